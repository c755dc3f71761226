# bash completion for tlsreport(1)                                              -*- shell-script -*-
# SPDX-License-Identifier: MIT

_tlsreport() {
        local cur prev words cword
        _init_completion -n = || return

        local opts_arg='-S --since -U --until --database -D --directory --file --host -o --output --client --ja4 --sni
                --burst-gap --retry-window --color'
        local opts_flag='--journal --all -f --follow -l --full --no-pager -h --help --version'
        local commands='sequences attempts clients summary'

        case $prev in
        -o | --output)
                COMPREPLY=($(compgen -W 'table json json-pretty csv html' -- "$cur"))
                return
                ;;
        -S | --since | -U | --until)
                COMPREPLY=($(compgen -W 'now today yesterday tomorrow -1h -30min -2d' -- "$cur"))
                return
                ;;
        --database)
                _filedir db
                return
                ;;
        -D | --directory)
                _filedir -d
                return
                ;;
        --file)
                _filedir journal
                return
                ;;
        --host)
                # the host names in the journal directory given with -D, as journalctl -F lists them
                local j dir=
                for ((j = 1; j < cword; j++)); do
                        [[ ${words[j]} == -D || ${words[j]} == --directory ]] && dir=${words[j + 1]}
                done
                [[ -n $dir ]] && COMPREPLY=($(compgen -W "$(journalctl -D "$dir" -F _HOSTNAME 2>/dev/null)" -- "$cur"))
                return
                ;;
        --color)
                COMPREPLY=($(compgen -W 'auto always never' -- "$cur"))
                return
                ;;
        --client | --ja4 | --sni | --burst-gap | --retry-window)
                return
                ;;
        esac

        case $cur in
        --color=*)
                COMPREPLY=($(compgen -W 'auto always never' -- "${cur#--color=}"))
                return
                ;;
        --output=*)
                COMPREPLY=($(compgen -W 'table json json-pretty csv html' -- "${cur#--output=}"))
                return
                ;;
        -*)
                COMPREPLY=($(compgen -W "$opts_arg $opts_flag" -- "$cur"))
                return
                ;;
        esac

        local i
        [[ " ${words[*]} " == *" -f "* || " ${words[*]} " == *" --follow "* ]] && commands='sequences attempts'
        for ((i = 1; i < cword; i++)); do
                if [[ " $commands " == *" ${words[i]} "* ]]; then
                        return
                fi
        done
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
}

complete -F _tlsreport tlsreport
