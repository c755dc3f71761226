# bash completion for tlswatchd(8)                                              -*- shell-script -*-
# SPDX-License-Identifier: MIT

_tlswatchd() {
        local cur prev words cword split
        _init_completion -s || return

        local opts='--listen --state-directory --database --no-record --cert --key --tls-min --tls-max
                --handshake-timeout --idle-timeout --max-connections --max-connections-per-client --max-requests
                --threads --journal --retention-days --backend --backend-protocol --backend-alpn
                --backend-connect-timeout --backend-idle-timeout --backend-client-idle-timeout --log-level
                -h --help --version'

        case $prev in
        --state-directory)
                _filedir -d
                return
                ;;
        --database)
                _filedir db
                return
                ;;
        --cert | --key)
                _filedir pem
                return
                ;;
        --tls-min | --tls-max)
                COMPREPLY=($(compgen -W '1.2 1.3' -- "$cur"))
                return
                ;;
        --journal)
                COMPREPLY=($(compgen -W 'all failures none' -- "$cur"))
                return
                ;;
        --backend-protocol)
                COMPREPLY=($(compgen -W 'proxy-v2 http' -- "$cur"))
                return
                ;;
        --backend-alpn)
                COMPREPLY=($(compgen -W 'http/1.1 h2,http/1.1 http/1.1,h2 h2' -- "$cur"))
                return
                ;;
        --log-level)
                COMPREPLY=($(compgen -W 'debug info notice warning err' -- "$cur"))
                return
                ;;
        --listen | --backend | --handshake-timeout | --idle-timeout | --max-connections | \
                --max-connections-per-client | --max-requests | --threads | --retention-days | \
                --backend-connect-timeout | --backend-idle-timeout | --backend-client-idle-timeout)
                return
                ;;
        esac
        $split && return

        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
} && complete -F _tlswatchd tlswatchd
