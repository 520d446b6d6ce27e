/* tests/bench/api/lean.h — bench-api's lean HTTPS client.
 *
 * Keep-alive HTTP/1.1 connections over OpenSSL, driven by a few threads,
 * each running an epoll loop over its share (connection i belongs to
 * thread i % nthreads). One request is in flight per connection, as with a
 * blocking client: send it, read the whole answer, then ask for the next.
 * It exists because a thread per libcurl client costs more CPU per request
 * than the server it measures, on a machine with few cores.
 *
 *     struct lean *l = lean_open(url, ca, get_hdrs, post_hdrs, 32, 2);
 *     lean_ready(l);              before each window: no handshake inside
 *     lean_start(l, &ops, arg);   ops->next … ops->done … ops->end
 *     lean_wait(l);               every thread has had ops->end
 *     lean_close(l);
 */
#ifndef KUBUS_BENCH_LEAN_H
#define KUBUS_BENCH_LEAN_H

#include <stdbool.h>
#include <stdint.h>

/* One request: a POST of body when body is not empty, else a GET. */
struct lean_req {
	char path[256];
	char body[1024];
};

/* A window's callbacks. They run on the thread that owns the connection;
 * `k` is that thread's number (0 … nthreads-1), `arg` lean_start's. */
struct lean_ops {
	/* The connection's next request into rq, or false: it has none
	 * until the window ends. */
	bool (*next)(void *arg, int k, struct lean_req *rq);
	/* rq's answer: its HTTP status and body (NUL-terminated), or -1 and
	 * why it failed; `ns` from sending to the answer's last byte. */
	void (*done)(void *arg, int k, const struct lean_req *rq, long status,
	    const char *body, int64_t ns);
	/* The thread's last call: none of its connections has a request. */
	void (*end)(void *arg, int k);
};

struct lean;

/* nconns connections to url ("https://IPv4:PORT"), TLS verified against
 * the CA file `ca` and the URL's address. get_hdrs and post_hdrs are
 * header lines, each ending in CRLF, sent with every GET or POST besides
 * Host and Content-Length (borrowed until lean_close). NULL (and a message
 * on stderr) when a connection cannot be made. */
struct lean *lean_open(const char *url, const char *ca, const char *get_hdrs,
    const char *post_hdrs, int nconns, int nthreads);
int lean_threads(const struct lean *l);
/* Reconnect the connections the server has closed meanwhile (its idle
 * timeout), as libcurl does before it reuses one. */
void lean_ready(struct lean *l);
/* Start a window: the threads ask ops->next until it says no on every
 * connection. The number of threads that could not start (their
 * connections do nothing). */
int lean_start(struct lean *l, const struct lean_ops *ops, void *arg);
void lean_wait(struct lean *l);
void lean_close(struct lean *l);

#endif
