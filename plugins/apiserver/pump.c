/* plugins/apiserver/pump.c — a stream without arm() made into one with.
 *
 * The HTTP side copies streams from libmicrohttpd's event loops, which
 * must not block. Watches arm on the watch cache (cache.c); a pod's log
 * (alloc.c) and a log from a peer API server (peer.c) are read by
 * blocking calls. For those a thread of the stream's own reads ahead
 * into a buffer of PUMP_CAP bytes and wakes the loop; when the buffer is
 * full it waits for the loop to take some, so a slow client holds at
 * most that much.
 *
 * The pump and the HTTP side share it: close() from the HTTP side asks
 * the thread to stop and whichever of the two is last frees it (the
 * thread may be in a read of up to PUMP_READ_MS).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define PUMP_CAP 65536
#define PUMP_READ_MS 250

/* Pump threads alive, for api_stream_pumps_wait. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live;

struct pump {
	struct api_stream st; /* first: what the HTTP side reads */
	struct api_stream *in;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the thread waits for room or stop */
	char buf[PUMP_CAP];
	size_t off, len;   /* unread bytes: buf[off, off + len) */
	bool ended;        /* in's read returned -1 */
	bool stop;         /* closed by the HTTP side */
	int refs;          /* the thread and the HTTP side */
	void (*wake)(void *);
	void *wake_arg;
};

static void pump_unref(struct pump *p)
{
	pthread_mutex_lock(&p->mu);
	bool last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (!last)
		return;
	p->in->close(p->in);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* Under p->mu. */
static void pump_wake(struct pump *p)
{
	void (*wake)(void *) = p->wake;
	p->wake = NULL;
	if (wake)
		wake(p->wake_arg);
}

static void *pump_main(void *arg)
{
	struct pump *p = arg;
	char chunk[16384];
	pthread_setname_np(pthread_self(), "api:stream");
	pthread_mutex_lock(&p->mu);
	while (!p->stop && !p->ended) {
		size_t room = PUMP_CAP - p->len;
		if (room == 0) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		ssize_t n = p->in->read(p->in, chunk,
		    room < sizeof(chunk) ? room : sizeof(chunk), PUMP_READ_MS);
		pthread_mutex_lock(&p->mu);
		if (n < 0)
			p->ended = true;
		if (n > 0 && !p->stop) {
			if (p->off + p->len + (size_t)n > PUMP_CAP) {
				memmove(p->buf, p->buf + p->off, p->len);
				p->off = 0;
			}
			memcpy(p->buf + p->off + p->len, chunk, (size_t)n);
			p->len += (size_t)n;
		}
		if (n != 0)
			pump_wake(p);
	}
	pthread_mutex_unlock(&p->mu);
	pump_unref(p);
	pthread_mutex_lock(&live_mu);
	live--;
	pthread_cond_broadcast(&live_cv);
	pthread_mutex_unlock(&live_mu);
	return NULL;
}

static ssize_t pump_read(struct api_stream *st, char *buf, size_t max,
    int timeout_ms)
{
	struct pump *p = (struct pump *)st;
	(void)timeout_ms; /* the HTTP side arms instead of waiting */
	pthread_mutex_lock(&p->mu);
	ssize_t n = 0;
	if (p->len) {
		n = (ssize_t)(p->len < max ? p->len : max);
		memcpy(buf, p->buf + p->off, (size_t)n);
		p->off += (size_t)n;
		p->len -= (size_t)n;
		if (p->len == 0)
			p->off = 0;
		pthread_cond_signal(&p->cv);
	} else if (p->ended) {
		n = -1;
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

static bool pump_arm(struct api_stream *st, void (*wake)(void *), void *arg)
{
	struct pump *p = (struct pump *)st;
	pthread_mutex_lock(&p->mu);
	bool armed = p->len == 0 && !p->ended;
	if (armed) {
		p->wake = wake;
		p->wake_arg = arg;
	}
	pthread_mutex_unlock(&p->mu);
	return armed;
}

static void pump_close(struct api_stream *st)
{
	struct pump *p = (struct pump *)st;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	p->wake = NULL;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pump_unref(p);
}

struct api_stream *api_stream_pumped(struct api_stream *in)
{
	if (in == NULL || in->arm)
		return in;
	struct pump *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		in->close(in);
		return NULL;
	}
	p->st.read = pump_read;
	p->st.arm = pump_arm;
	p->st.close = pump_close;
	p->st.content_type = in->content_type;
	p->in = in;
	p->refs = 2;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&live_mu);
	int rc = pthread_create(&t, &a, pump_main, p);
	if (rc == 0)
		live++;
	pthread_mutex_unlock(&live_mu);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		p->refs = 1;
		pump_unref(p);
		return NULL;
	}
	return &p->st;
}

void api_stream_pumps_wait(void)
{
	pthread_mutex_lock(&live_mu);
	while (live > 0)
		pthread_cond_wait(&live_cv, &live_mu);
	pthread_mutex_unlock(&live_mu);
}
