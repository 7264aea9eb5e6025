#include "runners/curl_loop.h"

#include <stdlib.h>

#include "util/list.h"

typedef struct transfer {
    list_node_t link; /* in curl_loop.transfers */
    CURL *easy;
    curl_loop_done_cb done;
    void *ud;
} transfer_t;

struct curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    list_node_t transfers; /* running, so that free can detach them */
};

static void check_done(curl_loop_t *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        transfer_t *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(l->multi, easy);
        if (t) {
            list_remove(&t->link);
            t->done(t->ud, easy, result);
            free(t);
        }
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    curl_loop_t *l = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(l->multi, fd, action, &running);
    check_done(l);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    curl_loop_t *l = arg;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(l);
}

/* libcurl says which socket to watch for what; one persistent event each. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    curl_loop_t *l = userp;
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev) {
            event_free(ev);
            curl_multi_assign(l->multi, s, NULL);
        }
        return 0;
    }
    short flags = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                  (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (ev) {
        event_del(ev);
        event_assign(ev, l->base, s, flags, on_socket, l);
    } else {
        ev = event_new(l->base, s, flags, on_socket, l);
        curl_multi_assign(l->multi, s, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    curl_loop_t *l = userp;
    if (timeout_ms < 0) {
        evtimer_del(l->timer);
        return 0;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    evtimer_add(l->timer, &tv);
    return 0;
}

curl_loop_t *curl_loop_new(struct event_base *base)
{
    curl_loop_t *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    list_init(&l->transfers);
    l->multi = curl_multi_init();
    l->timer = evtimer_new(base, on_timeout, l);
    if (!l->multi || !l->timer) {
        curl_loop_free(l);
        return NULL;
    }
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    return l;
}

void curl_loop_free(curl_loop_t *l)
{
    if (!l)
        return;
    if (l->multi) {
        /* Handles still attached: detach them; their owners clean them up. */
        while (!list_empty(&l->transfers)) {
            transfer_t *t = LIST_ENTRY(list_first(&l->transfers), transfer_t, link);
            list_remove(&t->link);
            curl_multi_remove_handle(l->multi, t->easy);
            free(t);
        }
        curl_multi_cleanup(l->multi);
    }
    if (l->timer)
        event_free(l->timer);
    free(l);
}

void curl_loop_remove(curl_loop_t *l, CURL *easy)
{
    transfer_t *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(l->multi, easy);
    if (t) {
        list_remove(&t->link);
        free(t);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    }
}

int curl_loop_add(curl_loop_t *l, CURL *easy, curl_loop_done_cb done, void *ud)
{
    transfer_t *t = malloc(sizeof *t);
    if (!t)
        return -1;
    *t = (transfer_t){ .easy = easy, .done = done, .ud = ud };
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
        free(t);
        return -1;
    }
    list_push_back(&l->transfers, &t->link);
    return 0;
}
