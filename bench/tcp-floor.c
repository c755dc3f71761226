/* SPDX-License-Identifier: MIT */
/* The kernel's share of one handshake: the loopback TCP work that a TLS 1.3 handshake needs with no TLS
 * in it. A server thread makes the system calls tlswatchd makes for one handshake (epoll, accept4,
 * TCP_NODELAY, getsockname, a timer armed and disarmed, the ClientHello read as a record header and
 * body, our flight written as 4 + 2 corked records of a TLS 1.3 handshake's sizes and pushed, the
 * client's two records read, close), against a client thread that connects, writes a ClientHello-sized
 * record, reads the flight, answers with 2 records and resets the connection after our close, as
 * `loadgen --lite` does. One client, one connection at a time.
 *
 *   tcp-floor [ROUNDS [CONNECTIONS_PER_ROUND [SERVER_WORK_US CLIENT_WORK_US]]]      defaults: 5 2000 0 0
 *
 * With SERVER_WORK_US, the server spins on the CPU for that long between the ClientHello and its flight,
 * as a server does its crypto there; with CLIENT_WORK_US, the client does so between our flight and its
 * answer. Each side then finds the other asleep, as in a real handshake, and pays for waking it up.
 * Prints the server thread's CPU time per connection without the spinning (CLOCK_THREAD_CPUTIME_ID; nearly
 * all of it is system time, which the kernel does not tell apart precisely) as median [min-max] over the
 * rounds. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>

#include "bench-util.h"
#include "macro.h"

#define MAX_ROUNDS 100

/* record sizes of a TLS 1.3 handshake with X25519 and one ECDSA P-256 certificate, as tlswatchd sends
 * and `loadgen --lite` answers them (header included) */
static const size_t client_hello = 5 + 130;
static const size_t flight1[] = {95, 6, 37, 565}; /* ServerHello, CCS, EncryptedExtensions, Certificate */
static const size_t flight2[] = {101, 69};        /* CertificateVerify, Finished */
static const size_t client_flight[] = {5 + 53, 5 + 19};

static struct sockaddr_in addr;
static unsigned n_conns, server_work_us, client_work_us;

/* Spins on the CPU for about us microseconds (on the vDSO's clock: no system call);
 * returns the CPU time spent, in nanoseconds. */
static int64_t spin(unsigned us) {
        int64_t t0, end;

        if (us == 0)
                return 0;
        t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        end = clock_ns(CLOCK_MONOTONIC) + (int64_t) us * 1000;
        while (clock_ns(CLOCK_MONOTONIC) < end)
                ;
        return clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
}

static int read_full(int fd, uint8_t *buf, size_t n) {
        for (size_t got = 0; got < n;) {
                ssize_t k = recv(fd, buf + got, n - got, 0);

                if (k <= 0)
                        return -EIO;
                got += (size_t) k;
        }
        return 0;
}

static void *client_main(void *arg) {
        uint8_t buf[4096] = {};
        size_t flight = 0;

        (void) arg;
        for (size_t i = 0; i < ELEMENTSOF(flight1); i++)
                flight += flight1[i];
        for (size_t i = 0; i < ELEMENTSOF(flight2); i++)
                flight += flight2[i];
        for (unsigned i = 0; i < n_conns; i++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct linger lg = {.l_onoff = 1, .l_linger = 0};

                if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) < 0 ||
                    send(fd, buf, client_hello, MSG_NOSIGNAL) != (ssize_t) client_hello ||
                    read_full(fd, buf, flight) < 0) {
                        fprintf(stderr, "client: %m\n");
                        exit(EXIT_FAILURE);
                }
                (void) spin(client_work_us);
                for (size_t j = 0; j < ELEMENTSOF(client_flight); j++)
                        (void) send(fd, buf, client_flight[j], MSG_NOSIGNAL);
                (void) recv(fd, buf, sizeof buf, 0); /* our EOF */
                (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                close(fd);
        }
        return NULL;
}

/* waits for the one descriptor that can be ready (one connection at a time), as the server's event loop does */
static int wait_ready(int ep) {
        struct epoll_event ev;

        return epoll_wait(ep, &ev, 1, -1) == 1 ? 0 : -EIO;
}

/* reads a record the way Mbed TLS does: its 5-byte header, then its body, waiting when nothing is there */
static int server_read_record(int ep, int fd, uint8_t *buf, size_t n) {
        for (size_t got = 0; got < n;) {
                ssize_t k = recv(fd, buf + got, got < 5 ? 5 - got : n - got, 0);

                if (k == 0)
                        return -EIO;
                if (k < 0) {
                        if (errno != EAGAIN || wait_ready(ep) < 0)
                                return -EIO;
                        continue;
                }
                got += (size_t) k;
        }
        return 0;
}

static int server_conn(int ep, int lfd, int tfd, int64_t *spun_ns) {
        struct itimerspec arm = {.it_value = {.tv_sec = 10}}, disarm = {};
        struct epoll_event ev = {.events = EPOLLIN};
        struct sockaddr_storage peer, local;
        socklen_t peer_len = sizeof peer, local_len = sizeof local;
        uint8_t buf[4096] = {};
        int fd;

        if (wait_ready(ep) < 0)
                return -EIO;
        fd = accept4(lfd, (struct sockaddr *) &peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        (void) getsockname(fd, (struct sockaddr *) &local, &local_len);
        ev.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        (void) accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); /* EAGAIN, as the server's drain */
        (void) timerfd_settime(tfd, 0, &arm, NULL);

        if (server_read_record(ep, fd, buf, client_hello) < 0)
                return -EIO;
        *spun_ns += spin(server_work_us);
        for (size_t i = 0; i < ELEMENTSOF(flight1); i++)
                (void) send(fd, buf, flight1[i], MSG_NOSIGNAL | (i + 1 < ELEMENTSOF(flight1) ? MSG_MORE : 0));
        for (size_t i = 0; i < ELEMENTSOF(flight2); i++)
                (void) send(fd, buf, flight2[i], MSG_NOSIGNAL | MSG_MORE);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        for (size_t i = 0; i < ELEMENTSOF(client_flight); i++)
                if (server_read_record(ep, fd, buf, client_flight[i]) < 0)
                        return -EIO;
        (void) epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
        (void) timerfd_settime(tfd, 0, &disarm, NULL);
        return 0;
}

int main(int argc, char **argv) {
        static double total[MAX_ROUNDS];
        unsigned rounds = 5;
        socklen_t len = sizeof addr;
        int lfd, ep, tfd;

        n_conns = 2000;
        if ((argc > 1 && parse_uint(argv[1], 1, MAX_ROUNDS, &rounds) < 0) ||
            (argc > 2 && parse_uint(argv[2], 10, 1000000, &n_conns) < 0) ||
            (argc > 3 &&
             (argc != 5 || parse_uint(argv[3], 0, 100000, &server_work_us) < 0 ||
              parse_uint(argv[4], 0, 100000, &client_work_us) < 0)) ||
            argc > 5) {
                fprintf(stderr,
                        "usage: tcp-floor [ROUNDS (1-%d) [CONNECTIONS_PER_ROUND [SERVER_WORK_US "
                        "CLIENT_WORK_US]]]\n",
                        MAX_ROUNDS);
                return 2;
        }
        addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ep = epoll_create1(EPOLL_CLOEXEC);
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (lfd < 0 || ep < 0 || tfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof addr) < 0 ||
            listen(lfd, 128) < 0 || getsockname(lfd, (struct sockaddr *) &addr, &len) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &(struct epoll_event){.events = EPOLLIN, .data.fd = lfd}) < 0) {
                fprintf(stderr, "set-up failed: %m\n");
                return 1;
        }
        for (unsigned r = 0; r < rounds; r++) {
                pthread_t client;
                int64_t t0, cpu0, spun = 0;

                if (pthread_create(&client, NULL, client_main, NULL) != 0)
                        return 1;
                t0 = clock_ns(CLOCK_MONOTONIC);
                cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
                for (unsigned i = 0; i < n_conns; i++)
                        if (server_conn(ep, lfd, tfd, &spun) < 0) {
                                fprintf(stderr, "server: connection %u failed\n", i);
                                return 1;
                        }
                total[r] = (double) (clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0 - spun) / 1e3 / n_conns;
                (void) pthread_join(client, NULL);
                fprintf(stderr,
                        "round %u: %u connections in %.2f s\n",
                        r + 1,
                        n_conns,
                        (double) (clock_ns(CLOCK_MONOTONIC) - t0) / 1e9);
        }
        qsort(total, rounds, sizeof(double), compare_double);
        printf("tcp_floor_us=%.1f [%.1f-%.1f] (server thread, per connection, %u rounds of %u, work %u/%u "
               "us)\n",
               total[rounds / 2],
               total[0],
               total[rounds - 1],
               rounds,
               n_conns,
               server_work_us,
               client_work_us);
        return 0;
}
