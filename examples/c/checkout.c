/*
 * checkout.c: what a vendor's application does with floatd, in one file.
 *
 * Checks a seat of a feature out of the licence servers, works while the
 * seat is held (reacting to what the library reports), and checks it in
 * when the work is done, on Ctrl-C or on SIGTERM.
 *
 *   make                     # cc checkout.c $(pkg-config --cflags --libs floatd_client)
 *   FLOATD_SERVERS=lic1:27000,lic2:27000 ./checkout cad 2.0 [SECONDS]
 *
 * Exit status: 0 done, 1 no seat (all in use, no licence, ...), 2 the seat
 * was lost while working, 3 could not start.
 */
#include <floatd_client.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/*
 * Called by the library, from its heartbeat thread or from inside a floatd
 * call, when the connection or a seat changes: tell the user, nothing
 * more. Blocking floatd calls are not allowed here (they return
 * FLOATD_E_WOULD_BLOCK); floatd_seat_state and the like are.
 */
static void on_licence_event(void *user_data, int32_t event, uint64_t seat_id,
                             const char *server, const char *detail)
{
    const char *app = user_data;
    printf("%s: licence event %s (server %s, seat %016" PRIx64 ")%s%s\n", app,
           floatd_event_name(event), server[0] ? server : "-", seat_id,
           detail[0] ? ": " : "", detail);
    fflush(stdout);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *feature = argc > 1 ? argv[1] : "cad";
    const char *version = argc > 2 ? argv[2] : NULL; /* NULL: any version */
    double work_seconds = argc > 3 ? atof(argv[3]) : 0; /* 0: until a signal */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* NULL servers: the list comes from FLOATD_SERVERS. */
    floatd_client *client = NULL;
    int32_t rc = floatd_client_new(NULL, NULL, &client);
    if (rc != FLOATD_OK) {
        fprintf(stderr, "cannot start the licence client: %s (%s)\n", floatd_strerror(rc),
                floatd_last_error());
        return 3;
    }
    floatd_client_set_callback(client, on_licence_event, "checkout");

    floatd_seat *seat = NULL;
    rc = floatd_checkout(client, feature, version, 1, 0, &seat);
    if (rc != FLOATD_OK) {
        switch (rc) {
        case FLOATD_E_NO_SEATS:
            fprintf(stderr, "every %s licence is in use; try again later\n", feature);
            break;
        case FLOATD_E_NO_SUCH_FEATURE:
        case FLOATD_E_NO_VERSION:
            fprintf(stderr, "this site has no licence for %s\n", feature);
            break;
        case FLOATD_E_UNREACHABLE:
            fprintf(stderr, "no licence server answers\n");
            break;
        default:
            break;
        }
        fprintf(stderr, "checkout of %s failed: %s (%s)\n", feature, floatd_strerror(rc),
                floatd_last_error());
        floatd_client_free(client);
        return 1;
    }
    printf("checked out %s (licence version %s, expires %s, seat %016" PRIx64 ")\n",
           floatd_seat_feature(seat), floatd_seat_version(seat), floatd_seat_expires(seat),
           floatd_seat_id(seat));
    fflush(stdout);

    /* The application's work. The library renews the seat meanwhile and
     * moves it to the backup server if the primary dies. */
    int status = 0;
    int32_t last_state = FLOATD_SEAT_HELD;
    double started = now_seconds();
    while (!stop_requested && (work_seconds <= 0 || now_seconds() - started < work_seconds)) {
        int32_t state = floatd_seat_state(seat);
        if (state != last_state) {
            printf("seat is %s\n", floatd_seat_state_name(state));
            fflush(stdout);
            last_state = state;
        }
        if (state == FLOATD_SEAT_LOST) {
            fprintf(stderr, "the %s licence was taken away: saving work and stopping\n", feature);
            status = 2;
            break;
        }
        /* ... one step of real work here ... */
        struct timespec step = {0, 100 * 1000 * 1000};
        nanosleep(&step, NULL);
    }

    rc = floatd_checkin(seat); /* frees the seat, whatever it returns */
    printf("checked in: %s\n", floatd_strerror(rc));
    rc = floatd_client_free(client);
    if (rc != FLOATD_OK)
        fprintf(stderr, "closing the licence client: %s\n", floatd_last_error());
    return status;
}
