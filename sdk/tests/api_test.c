/*
 * api_test.c: the C API through real servers, driven by tests/sdk_c.rs.
 *
 *   api_test codes SERVERS          result codes, NULLs, options, cancel
 *   api_test reentry SERVERS        blocking calls from the callback
 *   api_test threads SERVERS N ROUNDS COUNT   threads sharing a client
 *   api_test free-held SERVERS      freeing a client that holds seats
 *   api_test roam SERVERS STORE     roaming (a licence where `solver` may roam)
 *
 * The licence served has `cad` (count 1, version 1.0) and `solver`
 * (count 3). Lines on stdout tell the test where the program is; where
 * the test must look at the server first, the program waits for a line
 * on stdin. Any failed check prints FAIL and exits 1.
 */
#include <floatd_client.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf(" (last error: %s)\n", floatd_last_error());
    va_end(ap);
    exit(1);
}

#define EXPECT_RC(call, want)                                                            \
    do {                                                                                 \
        int32_t got_ = (call);                                                           \
        if (got_ != (want))                                                              \
            fail("%s:%d: %s returned %d (%s), expected %s", __FILE__, __LINE__, #call,  \
                 got_, floatd_strerror(got_), #want);                                    \
    } while (0)

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond))                                                                     \
            fail("%s:%d: expected %s", __FILE__, __LINE__, #cond);                      \
    } while (0)

static void say(const char *line)
{
    printf("%s\n", line);
    fflush(stdout);
}

/* Waits for the test to say go on. */
static void wait_for_go(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        fail("stdin closed");
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static floatd_client *new_client(const char *servers, const char *options)
{
    floatd_client *c = NULL;
    EXPECT_RC(floatd_client_new(servers, options, &c), FLOATD_OK);
    EXPECT(c != NULL);
    return c;
}

struct canceller {
    floatd_client *client;
};

static void *cancel_soon(void *arg)
{
    struct canceller *c = arg;
    sleep_ms(300);
    EXPECT_RC(floatd_client_cancel(c->client), FLOATD_OK);
    return NULL;
}

static void codes(const char *servers)
{
    floatd_client *a = new_client(servers, "user=alice host=ws1");
    floatd_client *b = new_client(servers, "user=bob host=ws2");
    floatd_seat *seat = NULL, *other = (floatd_seat *)&seat;

    EXPECT_RC(floatd_checkout(a, "nosuch", NULL, 1, 0, &other), FLOATD_E_NO_SUCH_FEATURE);
    EXPECT(other == NULL);
    EXPECT(strstr(floatd_last_error(), "nosuch") != NULL);
    EXPECT_RC(floatd_checkout(a, "cad", "9.0", 1, 0, &other), FLOATD_E_NO_VERSION);
    EXPECT_RC(floatd_checkout(a, "cad", "not a version", 1, 0, &other), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_checkout(a, "cad", NULL, 0, 0, &other), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_checkout(a, "cad", NULL, 5, 0, &other), FLOATD_E_COUNT_TOO_LARGE);

    EXPECT_RC(floatd_checkout(a, "cad", "1.0", 1, 0, &seat), FLOATD_OK);
    EXPECT(floatd_seat_state(seat) == FLOATD_SEAT_HELD);
    EXPECT(strcmp(floatd_seat_feature(seat), "cad") == 0);
    EXPECT(strcmp(floatd_seat_version(seat), "1.0") == 0);
    EXPECT(strcmp(floatd_seat_expires(seat), "permanent") == 0);
    EXPECT(floatd_seat_count(seat) == 1 && floatd_seat_lease_ms(seat) > 0);
    EXPECT(floatd_seat_id(seat) != 0);

    /* The one seat is taken: at once, after a wait, and cancelled. */
    EXPECT_RC(floatd_checkout(b, "cad", NULL, 1, 0, &other), FLOATD_E_NO_SEATS);
    EXPECT_RC(floatd_checkout(b, "cad", NULL, 1, 300, &other), FLOATD_E_TIMEOUT);
    struct canceller c = {b};
    pthread_t t;
    pthread_create(&t, NULL, cancel_soon, &c);
    EXPECT_RC(floatd_checkout(b, "cad", NULL, 1, 600000, &other), FLOATD_E_CANCELLED);
    pthread_join(t, NULL);
    EXPECT(other == NULL);

    EXPECT_RC(floatd_checkin(seat), FLOATD_OK);
    EXPECT_RC(floatd_checkout(b, "cad", NULL, 1, 0, &seat), FLOATD_OK);
    EXPECT_RC(floatd_checkin(seat), FLOATD_OK);

    /* NULLs and bad options are refused, never a crash. */
    EXPECT_RC(floatd_checkout(NULL, "cad", NULL, 1, 0, &seat), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_checkout(a, NULL, NULL, 1, 0, &seat), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_checkout(a, "cad", NULL, 1, 0, NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_checkin(NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_seat_state(NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_heartbeat(NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_client_cancel(NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_client_set_callback(NULL, NULL, NULL), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_client_free(NULL), FLOATD_OK);
    EXPECT(floatd_seat_id(NULL) == 0 && floatd_seat_count(NULL) == 0);
    EXPECT(strcmp(floatd_seat_feature(NULL), "") == 0);
    floatd_client *bad = (floatd_client *)&seat;
    EXPECT_RC(floatd_client_new(servers, "colour=blue", &bad), FLOATD_E_BAD_ARGUMENT);
    EXPECT(bad == NULL && strstr(floatd_last_error(), "colour") != NULL);
    EXPECT_RC(floatd_client_new("no-port", NULL, &bad), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_client_new(servers, NULL, NULL), FLOATD_E_BAD_ARGUMENT);

    /* Every code has words; unknown ones too. */
    for (int32_t code = 0; code >= FLOATD_E_INTERNAL; code--)
        EXPECT(strlen(floatd_strerror(code)) > 0);
    EXPECT(strcmp(floatd_strerror(-1000), "unknown result code") == 0);
    EXPECT(floatd_protocol_version() == 1 && strlen(floatd_version()) > 0);

    EXPECT_RC(floatd_client_free(a), FLOATD_OK);
    EXPECT_RC(floatd_client_free(b), FLOATD_OK);
    say("codes: ok");
}

struct reentry {
    floatd_client *client;
    floatd_seat *seat;
    int events, lost, checkout_rc, free_rc, checkin_rc, set_rc, state;
};

static void reentering_callback(void *user_data, int32_t event, uint64_t seat_id,
                                const char *server, const char *detail)
{
    struct reentry *r = user_data;
    floatd_seat *s = NULL;
    (void)server;
    (void)detail;
    r->events++;
    if (event != FLOATD_EVENT_LOST || seat_id != floatd_seat_id(r->seat))
        return;
    r->lost++;
    r->checkout_rc = floatd_checkout(r->client, "solver", NULL, 1, 0, &s);
    r->free_rc = floatd_client_free(r->client);
    r->checkin_rc = floatd_checkin(r->seat);
    r->set_rc = floatd_client_set_callback(r->client, NULL, NULL);
    r->state = floatd_seat_state(r->seat);
}

/* Runs on a server whose lease is short: the seat, never renewed, expires
 * there; the heartbeat that finds it gone reports LOST to the callback,
 * which tries blocking calls. */
static void reentry(const char *servers)
{
    struct reentry r;
    memset(&r, 0, sizeof r);
    r.client = new_client(servers, "heartbeat=manual");
    EXPECT_RC(floatd_client_set_callback(r.client, reentering_callback, &r), FLOATD_OK);
    EXPECT_RC(floatd_checkout(r.client, "solver", NULL, 1, 0, &r.seat), FLOATD_OK);
    while (floatd_seat_state(r.seat) == FLOATD_SEAT_HELD)
        sleep_ms(20);
    EXPECT(floatd_seat_state(r.seat) == FLOATD_SEAT_EXPIRED);
    say("reentry: expired here; waiting for the server");
    wait_for_go();
    EXPECT_RC(floatd_heartbeat(r.client), FLOATD_OK);
    EXPECT(r.lost == 1);
    EXPECT(r.checkout_rc == FLOATD_E_WOULD_BLOCK);
    EXPECT(r.free_rc == FLOATD_E_WOULD_BLOCK);
    EXPECT(r.checkin_rc == FLOATD_E_WOULD_BLOCK);
    EXPECT(r.set_rc == FLOATD_E_WOULD_BLOCK);
    EXPECT(r.state == FLOATD_SEAT_LOST);
    /* Outside the callback the same calls work. */
    EXPECT(floatd_seat_state(r.seat) == FLOATD_SEAT_LOST);
    EXPECT_RC(floatd_checkin(r.seat), FLOATD_E_SEAT_LOST);
    floatd_seat *s = NULL;
    EXPECT_RC(floatd_checkout(r.client, "solver", NULL, 1, 0, &s), FLOATD_OK);
    EXPECT_RC(floatd_checkin(s), FLOATD_OK);
    EXPECT_RC(floatd_client_free(r.client), FLOATD_OK);
    say("reentry: ok");
}

struct shared {
    floatd_client *client;
    int rounds, count;
    pthread_mutex_t lock;
    int holding, most, granted, denied, other;
};

static void *churn(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        floatd_seat *seat = NULL;
        int32_t rc = floatd_checkout(s->client, "solver", NULL, 1, 0, &seat);
        pthread_mutex_lock(&s->lock);
        if (rc == FLOATD_OK) {
            s->granted++;
            s->holding++;
            if (s->holding > s->most)
                s->most = s->holding;
        } else if (rc == FLOATD_E_NO_SEATS) {
            s->denied++;
        } else {
            s->other++;
            printf("unexpected %s: %s\n", floatd_strerror(rc), floatd_last_error());
        }
        pthread_mutex_unlock(&s->lock);
        if (rc != FLOATD_OK)
            continue;
        sleep_ms(2);
        pthread_mutex_lock(&s->lock);
        s->holding--;
        pthread_mutex_unlock(&s->lock);
        rc = floatd_checkin(seat);
        if (rc != FLOATD_OK) {
            pthread_mutex_lock(&s->lock);
            s->other++;
            printf("checkin: %s: %s\n", floatd_strerror(rc), floatd_last_error());
            pthread_mutex_unlock(&s->lock);
        }
    }
    return NULL;
}

static void threads(const char *servers, int n, int rounds, int count)
{
    struct shared s;
    memset(&s, 0, sizeof s);
    s.client = new_client(servers, NULL);
    s.rounds = rounds;
    s.count = count;
    pthread_mutex_init(&s.lock, NULL);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, churn, &s);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&s.lock);
    printf("threads: granted %d denied %d most %d other %d\n", s.granted, s.denied, s.most,
           s.other);
    EXPECT(s.other == 0);
    EXPECT(s.granted > 0 && s.granted + s.denied == n * rounds);
    EXPECT(s.most <= count);
    EXPECT_RC(floatd_client_free(s.client), FLOATD_OK);
    say("threads: ok");
}

static void free_held(const char *servers)
{
    floatd_client *c = new_client(servers, NULL);
    floatd_seat *one = NULL, *two = NULL;
    EXPECT_RC(floatd_checkout(c, "solver", NULL, 1, 0, &one), FLOATD_OK);
    EXPECT_RC(floatd_checkout(c, "solver", NULL, 2, 0, &two), FLOATD_OK);
    say("free-held: holding 3");
    wait_for_go();
    EXPECT_RC(floatd_client_free(c), FLOATD_OK);
    say("free-held: freed");
    /* The seat objects outlive their client until checked in. */
    EXPECT(floatd_seat_state(one) == FLOATD_SEAT_RETURNED);
    EXPECT(floatd_seat_state(two) == FLOATD_SEAT_RETURNED);
    EXPECT_RC(floatd_checkin(one), FLOATD_OK);
    EXPECT_RC(floatd_checkin(two), FLOATD_OK);
    wait_for_go();
    say("free-held: ok");
}

/* Roams solver, checks the token offline, extends and returns it. */
static void roam(const char *servers, const char *store)
{
    floatd_client *c = new_client(servers, NULL);
    uint64_t until = 0, later = 0;
    EXPECT_RC(floatd_roam(c, "cad", NULL, 1, 1, store, &until), FLOATD_E_NOT_ROAMABLE);
    EXPECT_RC(floatd_roam(c, "solver", NULL, 1, 99, store, &until), FLOATD_E_ROAM_TOO_LONG);
    EXPECT_RC(floatd_roam(c, "solver", NULL, 1, 0, store, &until), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_roam(NULL, "solver", NULL, 1, 1, store, &until), FLOATD_E_BAD_ARGUMENT);
    EXPECT_RC(floatd_roam_check("solver", NULL, 1, store, &until), FLOATD_E_NO_ROAM);
    EXPECT_RC(floatd_roam(c, "solver", "1.0", 2, 1, store, &until), FLOATD_OK);
    EXPECT(until > (uint64_t)time(NULL));
    say("roam: roaming");
    wait_for_go();
    /* Offline: no client, the kept token alone. */
    EXPECT_RC(floatd_roam_check("solver", "1.0", 2, store, &later), FLOATD_OK);
    EXPECT(later == until);
    EXPECT_RC(floatd_roam_check("solver", "2.0", 1, store, NULL), FLOATD_E_NO_ROAM);
    EXPECT_RC(floatd_roam_check("solver", NULL, 3, store, NULL), FLOATD_E_NO_ROAM);
    EXPECT_RC(floatd_roam_extend(c, "solver", 3, store, &later), FLOATD_OK);
    EXPECT(later == until + 2 * 86400);
    EXPECT_RC(floatd_roam_return(c, "solver", store), FLOATD_OK);
    EXPECT_RC(floatd_roam_check("solver", NULL, 1, store, NULL), FLOATD_E_NO_ROAM);
    EXPECT_RC(floatd_roam_return(c, NULL, store), FLOATD_E_NO_ROAM);
    EXPECT_RC(floatd_client_free(c), FLOATD_OK);
    say("roam: returned");
    wait_for_go();
    say("roam: ok");
}

int main(int argc, char **argv)
{
    if (argc < 3)
        fail("usage: api_test codes|reentry|threads|free-held|roam SERVERS ...");
    const char *what = argv[1], *servers = argv[2];
    if (strcmp(what, "codes") == 0)
        codes(servers);
    else if (strcmp(what, "reentry") == 0)
        reentry(servers);
    else if (strcmp(what, "threads") == 0 && argc == 6)
        threads(servers, atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    else if (strcmp(what, "free-held") == 0)
        free_held(servers);
    else if (strcmp(what, "roam") == 0 && argc == 4)
        roam(servers, argv[3]);
    else
        fail("unknown scenario %s", what);
    return 0;
}
