/* cpgbench: one node of benchmarks/compare_corosync.py.
 *
 *   cpgbench GROUP SIZE DURATION_S RATE NODES
 *
 * Joins the Corosync CPG group GROUP and, once the group holds NODES
 * members, prints {"ready":NODEID} and waits for "go" on stdin. Then, for
 * DURATION_S seconds, it multicasts SIZE-byte messages with agreed
 * ordering (CPG_TYPE_AGREED): as fast as flow control allows when RATE is
 * 0, else RATE messages/s. Every message carries its sender, a sequence
 * number and its send time (CLOCK_MONOTONIC), so the sender measures its
 * self-delivery latency. It counts every delivery inside the window, keeps
 * dispatching for a bounded drain, prints one {"result":{...}} line, and
 * stays in the group until "exit" (or end of stdin).
 *
 * Every loop is bounded in time; stdout carries JSON lines only.
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define HEADER_BYTES 16
#define LATENCY_MAX 4000000 /* samples kept: a flood of minutes at ~50k/s */
#define FORM_TIMEOUT_S 60.0
#define DRAIN_S 2.0
#define BURST_MAX 256 /* sends between dispatches under a flood */

struct header {
    uint32_t nodeid;
    uint32_t seq;
    uint64_t sent_ns;
};

static unsigned int my_nodeid;
static int members;
static double window_end = 1e300;
static uint64_t delivered_in_window, delivered_total;
static uint32_t *latency_us;
static size_t latency_n;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
                       uint32_t pid, void *msg, size_t len) {
    (void)h, (void)group, (void)pid;
    double t = now_s();
    delivered_total++;
    if (t <= window_end) delivered_in_window++;
    if (nodeid == my_nodeid && len >= HEADER_BYTES && latency_n < LATENCY_MAX) {
        struct header hd;
        memcpy(&hd, msg, sizeof hd);
        latency_us[latency_n++] = (uint32_t)((now_ns() - hd.sent_ns) / 1000u);
    }
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group,
                       const struct cpg_address *member_list, size_t member_n,
                       const struct cpg_address *left, size_t left_n,
                       const struct cpg_address *joined, size_t joined_n) {
    (void)h, (void)group, (void)member_list, (void)left, (void)left_n, (void)joined,
        (void)joined_n;
    members = (int)member_n;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Dispatch whatever is pending, waiting up to timeout_s for the first. */
static int pump(cpg_handle_t h, int fd, double timeout_s) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (timeout_s < 0) timeout_s = 0;
    struct timespec ts = {.tv_sec = (time_t)timeout_s,
                          .tv_nsec = (long)((timeout_s - (double)(time_t)timeout_s) * 1e9)};
    if (ppoll(&p, 1, &ts, NULL) > 0 && cpg_dispatch(h, CS_DISPATCH_ALL) != CS_OK) return -1;
    return 0;
}

/* Wait for a line on stdin while dispatching; 1 if it starts with word. */
static int wait_word(cpg_handle_t h, int fd, const char *word) {
    char line[64];
    for (;;) {
        struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        if (poll(p, 2, 100) < 0 && errno != EINTR) return 0;
        if (p[1].revents & POLLIN) cpg_dispatch(h, CS_DISPATCH_ALL);
        if (p[0].revents & (POLLIN | POLLHUP)) {
            if (!fgets(line, sizeof line, stdin)) return 0;
            return strncmp(line, word, strlen(word)) == 0;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: cpgbench GROUP SIZE DURATION_S RATE NODES\n");
        return 2;
    }
    struct cpg_name group;
    size_t size = (size_t)atol(argv[2]);
    double duration = atof(argv[3]), rate = atof(argv[4]);
    int nodes = atoi(argv[5]);
    if (size < HEADER_BYTES || size > 1000000 || duration <= 0 || nodes < 1) {
        fprintf(stderr, "cpgbench: SIZE must be >= %d, DURATION_S > 0\n", HEADER_BYTES);
        return 2;
    }
    group.length = (uint32_t)strlen(argv[1]);
    memcpy(group.value, argv[1], group.length);
    latency_us = malloc(sizeof(uint32_t) * LATENCY_MAX);
    char *buf = calloc(1, size);
    if (!latency_us || !buf) return 1;
    setvbuf(stdin, NULL, _IONBF, 0);

    cpg_callbacks_t cb = {.cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg};
    cpg_handle_t h;
    int fd;
    cs_error_t err = cpg_initialize(&h, &cb);
    if (err != CS_OK) {
        fprintf(stderr, "cpgbench: cpg_initialize: %d\n", err);
        return 1;
    }
    cpg_local_get(h, &my_nodeid);
    cpg_fd_get(h, &fd);
    if ((err = cpg_join(h, &group)) != CS_OK) {
        fprintf(stderr, "cpgbench: cpg_join: %d\n", err);
        return 1;
    }
    double deadline = now_s() + FORM_TIMEOUT_S;
    while (members < nodes) {
        if (now_s() > deadline || pump(h, fd, 0.1) < 0) {
            fprintf(stderr, "cpgbench: group did not reach %d members\n", nodes);
            return 1;
        }
    }
    printf("{\"ready\":%u}\n", my_nodeid);
    fflush(stdout);
    if (!wait_word(h, fd, "go")) return 0;

    struct header hd = {.nodeid = my_nodeid};
    struct iovec iov = {.iov_base = buf, .iov_len = size};
    double start = now_s(), cpu0 = cpu_s();
    window_end = start + duration;
    /* At a fixed rate the nodes' first sends are staggered over one period. */
    double period = rate > 0 ? 1.0 / rate : 0.0;
    double next_at = start + period * (double)((my_nodeid - 1) % (unsigned)nodes) / nodes;
    uint64_t sent = 0, try_again = 0;
    for (double t = start; t < window_end; t = now_s()) {
        int burst = 0;
        while (burst < BURST_MAX && (period == 0.0 || t >= next_at)) {
            hd.seq = (uint32_t)sent;
            hd.sent_ns = now_ns();
            memcpy(buf, &hd, sizeof hd);
            err = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
            if (err == CS_ERR_TRY_AGAIN) {
                try_again++;
                break;
            }
            if (err != CS_OK) {
                fprintf(stderr, "cpgbench: cpg_mcast_joined: %d\n", err);
                return 1;
            }
            sent++;
            burst++;
            if (period) next_at += period;
        }
        double wait_s = period ? next_at - now_s() : 0.0;
        if (err == CS_ERR_TRY_AGAIN) wait_s = 0.001; /* flow control: let corosync drain */
        if (wait_s > window_end - now_s()) wait_s = window_end - now_s();
        if (pump(h, fd, wait_s) < 0) return 1;
    }
    double cpu = cpu_s() - cpu0;
    for (double drain_end = now_s() + DRAIN_S; now_s() < drain_end;) {
        if (pump(h, fd, 0.01) < 0) break;
    }
    qsort(latency_us, latency_n, sizeof(uint32_t), cmp_u32);
    printf("{\"result\":{\"node\":%u,\"sent\":%llu,\"try_again\":%llu,"
           "\"delivered_in_window\":%llu,\"delivered_total\":%llu,\"cpu_s\":%.4f,"
           "\"latency_n\":%zu,\"latencies_us\":[",
           my_nodeid, (unsigned long long)sent, (unsigned long long)try_again,
           (unsigned long long)delivered_in_window, (unsigned long long)delivered_total, cpu,
           latency_n);
    /* At most ~1,000 evenly spaced samples of the sorted latencies: enough
     * for p50/p99 across nodes, small enough for one line. */
    size_t step = latency_n > 1000 ? latency_n / 1000 : 1;
    for (size_t i = 0; i < latency_n; i += step)
        printf("%s%u", i ? "," : "", latency_us[i]);
    printf("]}}\n");
    fflush(stdout);
    wait_word(h, fd, "exit");
    cpg_leave(h, &group);
    cpg_finalize(h);
    return 0;
}
