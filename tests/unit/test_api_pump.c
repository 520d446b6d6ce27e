/* tests/unit/test_api_pump.c — a blocking stream made armable
 * (plugins/apiserver/pump.c), as the HTTP side reads pod logs:
 *
 *   - a stream that has arm() already is given back as it is;
 *   - bytes read ahead come out in order; arm() says false while some are
 *     buffered and true when none are, and the wake comes once the stream
 *     has more, then again at its end (read then gives -1);
 *   - a reader that takes nothing holds the pump at its 64 KiB buffer:
 *     the stream is read only as far as the reader has taken, plus that;
 *   - closing while the pump's thread is blocked in a read frees
 *     everything once that read returns (api_stream_pumps_wait).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"

/* A stream that hands out `total` bytes (byte i is i % 251) in pieces of
 * up to `piece`, each when the test lets one through (gate), then ends. */
struct fake {
	struct api_stream st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t total, piece, given;
	int gate;          /* pieces the test allows */
	atomic_int closed;
};

static ssize_t fake_read(struct api_stream *st, char *buf, size_t max,
    int timeout_ms)
{
	struct fake *f = (struct fake *)st;
	pthread_mutex_lock(&f->mu);
	if (f->gate == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)timeout_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
	ssize_t n = 0;
	if (f->given == f->total) {
		n = -1;
	} else if (f->gate > 0) {
		size_t k = f->total - f->given;
		if (k > f->piece)
			k = f->piece;
		if (k > max)
			k = max;
		for (size_t i = 0; i < k; i++)
			buf[i] = (char)((f->given + i) % 251);
		f->given += k;
		f->gate--;
		n = (ssize_t)k;
	}
	pthread_mutex_unlock(&f->mu);
	return n;
}

static void fake_close(struct api_stream *st)
{
	struct fake *f = (struct fake *)st;
	atomic_store(&f->closed, 1);
}

static struct fake *fake_new(size_t total, size_t piece)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->st.read = fake_read;
	f->st.close = fake_close;
	f->st.content_type = "text/plain";
	f->total = total;
	f->piece = piece;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

static void fake_free(struct fake *f)
{
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static size_t given(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = f->given;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* Wait up to 2 s for the stream to have given `want` bytes; then a
 * moment more, in which it must give no more than that. */
static size_t settles_at(struct fake *f, size_t want)
{
	for (int i = 0; i < 200 && given(f) < want; i++)
		usleep(10000);
	usleep(100000);
	return given(f);
}

static void let(struct fake *f, int pieces)
{
	pthread_mutex_lock(&f->mu);
	f->gate += pieces;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static atomic_int wakes;

static void on_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wakes, 1);
}

/* Wait up to 5 s for *v to reach want. */
static bool reaches(atomic_int *v, int want)
{
	for (int i = 0; i < 500 && atomic_load(v) < want; i++)
		usleep(10000);
	return atomic_load(v) >= want;
}

static bool never_armed(struct api_stream *st, void (*wake)(void *),
    void *arg)
{
	(void)st;
	(void)wake;
	(void)arg;
	return false;
}

static void test_armable_kept(void **state)
{
	(void)state;
	struct api_stream s = { .arm = never_armed };
	assert_ptr_equal(api_stream_pumped(&s), &s);
	assert_null(api_stream_pumped(NULL));
}

static void test_order_arm_and_end(void **state)
{
	(void)state;
	struct fake *f = fake_new(10000, 700);
	struct api_stream *p = api_stream_pumped(&f->st);
	assert_non_null(p);
	assert_string_equal(p->content_type, "text/plain");
	char buf[512];
	/* nothing yet: armed, and no bytes */
	atomic_store(&wakes, 0);
	assert_int_equal(p->read(p, buf, sizeof(buf), 0), 0);
	assert_true(p->arm(p, on_wake, NULL));
	let(f, 1000);
	assert_true(reaches(&wakes, 1));
	size_t got = 0;
	int ended = 0;
	for (int spins = 0; spins < 100000 && !ended; spins++) {
		ssize_t n = p->read(p, buf, sizeof(buf), 0);
		if (n < 0) {
			ended = 1;
		} else if (n == 0) {
			if (p->arm(p, on_wake, NULL))
				usleep(1000);
		} else {
			for (ssize_t i = 0; i < n; i++)
				assert_int_equal((unsigned char)buf[i],
				    (got + (size_t)i) % 251);
			got += (size_t)n;
		}
	}
	assert_true(ended);
	assert_int_equal(got, 10000);
	/* at the end arm has nothing to wait for */
	assert_false(p->arm(p, on_wake, NULL));
	p->close(p);
	api_stream_pumps_wait();
	assert_int_equal(atomic_load(&f->closed), 1);
	fake_free(f);
}

static void test_buffer_bounds_reading(void **state)
{
	(void)state;
	/* 1 MiB offered in 4 KiB pieces, all let through at once */
	struct fake *f = fake_new(1 << 20, 4096);
	struct api_stream *p = api_stream_pumped(&f->st);
	assert_non_null(p);
	let(f, 1 << 20);
	/* the pump fills its 64 KiB and stops there */
	assert_int_equal(settles_at(f, 65536), 65536);
	char buf[512];
	/* bytes waiting: arm declines */
	assert_false(p->arm(p, on_wake, NULL));
	/* take 32 KiB: the pump reads as much again, no more */
	size_t took = 0;
	while (took < 32768) {
		ssize_t n = p->read(p, buf, sizeof(buf), 0);
		assert_true(n > 0);
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal((unsigned char)buf[i],
			    (took + (size_t)i) % 251);
		took += (size_t)n;
	}
	assert_int_equal(settles_at(f, 65536 + 32768), 65536 + 32768);
	p->close(p);
	api_stream_pumps_wait();
	assert_int_equal(atomic_load(&f->closed), 1);
	fake_free(f);
}

static void test_close_while_blocked(void **state)
{
	(void)state;
	struct fake *f = fake_new(100, 10);
	struct api_stream *p = api_stream_pumped(&f->st);
	assert_non_null(p);
	usleep(50000); /* the pump is in a read that waits for the gate */
	assert_true(p->arm(p, on_wake, NULL));
	atomic_store(&wakes, 0);
	p->close(p);
	/* the read returns within its 250 ms; then the stream is closed */
	api_stream_pumps_wait();
	assert_int_equal(atomic_load(&f->closed), 1);
	assert_int_equal(atomic_load(&wakes), 0); /* no wake after close */
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_armable_kept),
		cmocka_unit_test(test_order_arm_and_end),
		cmocka_unit_test(test_buffer_bounds_reading),
		cmocka_unit_test(test_close_while_blocked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
