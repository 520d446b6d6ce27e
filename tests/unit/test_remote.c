/* tests/unit/test_remote.c — peers over ipc and tcp: joining hosts, the
 * hello, tokens, ACLs, forged identities and garbage from the wire; an
 * uplink with several addresses (a dead first one, moving to another host
 * when its host goes away, subscriptions kept, moving when its host
 * freezes); pings, and a host dropping a peer that went silent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <nng/nng.h>

#include "bus.h"
#include "conn.h"
#include "envelope.h"
#include "harness.h"
#include "host.h"

#define ADMIN_TOKEN "0123456789abcdef0123456789abcdef-admin"
#define ALICE_TOKEN "0123456789abcdef0123456789abcdef-alice"
#define VIEW_TOKEN "0123456789abcdef0123456789abcdef-viewer"

static const char *const plugin_groups[] = { "kubus:plugins", "kubus:kind:service" };

struct fixture {
	char *dir;
	struct kbt_host *h;
	char url[512];
	pid_t child;       /* a host in its own process (may be stopped) */
	char *child_dir;
};

static void write_tokens(const char *dir, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/tokens.csv", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s,admin,1,\"system:masters\"\n", ADMIN_TOKEN);
	fprintf(f, "%s,alice,2,\"system:masters,devs\"\n", ALICE_TOKEN);
	fprintf(f, "%s,viewer,3,viewers\n", VIEW_TOKEN);
	fclose(f);
	chmod(path, mode);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = kbt_mkdtemp("remote");
	write_tokens(f->dir, 0600);
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: cp, data_dir: %s}\n"
	    "bus:\n"
	    "  listen: [ipc://kubus.sock, tcp://127.0.0.1:0]\n"
	    "plugins:\n"
	    "  - {name: echo, use: echo}\n",
	    f->dir);
	f->h = kbt_host_start(yaml, err, sizeof(err));
	if (f->h == NULL)
		fail_msg("host: %s", err);
	snprintf(f->url, sizeof(f->url), "ipc://%s/kubus.sock", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->child > 0) {
		/* Frozen or not, whatever the test left it as. */
		kill(f->child, SIGCONT);
		kbt_kill(f->child);
	}
	if (f->child_dir) {
		kbt_rmrf(f->child_dir);
		free(f->child_dir);
	}
	kbt_host_stop(f->h);
	kbt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* --- a raw peer: frames by hand ------------------------------------------------ */

struct raw {
	nng_stream *s;
	uint8_t buf[1 << 16];
	size_t len;
};

static struct raw *raw_dial(const char *url)
{
	struct raw *r = calloc(1, sizeof(*r));
	nng_stream_dialer *d;
	nng_aio *aio;
	assert_int_equal(nng_stream_dialer_alloc(&d, url), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_timeout(aio, 2000);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	r->s = nng_aio_get_output(aio, 0);
	nng_aio_free(aio);
	nng_stream_dialer_free(d);
	return r;
}

static void raw_close(struct raw *r)
{
	nng_stream_close(r->s);
	nng_stream_free(r->s);
	free(r);
}

static int raw_write(struct raw *r, const void *data, size_t len)
{
	nng_aio *aio;
	nng_aio_alloc(&aio, NULL, NULL);
	nng_aio_set_timeout(aio, 2000);
	size_t off = 0;
	int rv = 0;
	while (off < len && rv == 0) {
		nng_iov iov = { .iov_buf = (uint8_t *)data + off, .iov_len = len - off };
		nng_aio_set_iov(aio, 1, &iov);
		nng_stream_send(r->s, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
		off += nng_aio_count(aio);
	}
	nng_aio_free(aio);
	return rv;
}

static int raw_send(struct raw *r, int t, uint64_t id, const char *src,
    const char *p, const char *dst, const char *op, kb_body *body)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	size_t bl = 0;
	const void *b = body ? kb_body_data(body, &bl) : NULL;
	kb_env_encode(&sb, t, id, src, p, NULL, 0, dst, op, 0, b, bl, 0, NULL);
	int rv = raw_write(r, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	kb_body_unref(body);
	return rv;
}

/* Send bytes as one length-prefixed frame, whatever they hold. */
static int raw_send_bytes(struct raw *r, const void *data, uint32_t len)
{
	uint8_t hdr[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
		(uint8_t)(len >> 8), (uint8_t)len };
	int rv = raw_write(r, hdr, 4);
	return rv ? rv : raw_write(r, data, len);
}

/* Read one frame; 0 and *e filled, or an nng error (closed, timeout). */
static int raw_recv(struct raw *r, struct kb_env *e, int timeout_ms)
{
	nng_aio *aio;
	nng_aio_alloc(&aio, NULL, NULL);
	int rv = 0;
	for (;;) {
		if (r->len >= 4) {
			size_t fl = ((size_t)r->buf[0] << 24) | ((size_t)r->buf[1] << 16) |
			    ((size_t)r->buf[2] << 8) | r->buf[3];
			if (r->len >= 4 + fl) {
				const char *why;
				static uint8_t frame[1 << 16];
				memcpy(frame, r->buf + 4, fl);
				memmove(r->buf, r->buf + 4 + fl, r->len - 4 - fl);
				r->len -= 4 + fl;
				rv = kb_env_decode(frame, fl, e, &why) ? NNG_EPROTO : 0;
				break;
			}
		}
		nng_aio_set_timeout(aio, timeout_ms);
		nng_iov iov = { .iov_buf = r->buf + r->len, .iov_len = sizeof(r->buf) - r->len };
		nng_aio_set_iov(aio, 1, &iov);
		nng_stream_recv(r->s, aio);
		nng_aio_wait(aio);
		if ((rv = nng_aio_result(aio)) != 0)
			break;
		r->len += nng_aio_count(aio);
	}
	nng_aio_free(aio);
	return rv;
}

static struct raw *raw_hello(const char *url, const char *token)
{
	struct raw *r = raw_dial(url);
	assert_int_equal(raw_send(r, KB_ENV_HELLO, 1, NULL, NULL, NULL, NULL,
	                     kb_mp_body("{s:s, s:s}", "token", token, "name", "raw")), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_REP);
	free(e);
	return r;
}

/* true when the host hung up on us */
static bool raw_closed(struct raw *r)
{
	struct kb_env *e = malloc(sizeof(*e));
	int rv;
	while ((rv = raw_recv(r, e, 2000)) == 0)
		;
	free(e);
	return rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET;
}

/* --- the tests ---------------------------------------------------------------------- */

static void test_join_and_route(void **state)
{
	struct fixture *f = *state;
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: worker}\n"
	    "bus: {join: \"%s\", join_token: %s, listen: []}\n"
	    "plugins:\n"
	    "  - {name: wecho, use: echo, config: {service: worker-echo}}\n",
	    f->url, ADMIN_TOKEN);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	if (w == NULL)
		fail_msg("worker: %s", err);
	/* worker -> control plane: unknown here, so it goes up */
	kb_ctx *wc = kbt_client(w, "wtester", "plugin:wtester", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(wc, "echo", "echo", kb_mp_body("{s:i}", "x", 41), 2000, &rep), 0);
	int64_t x = 0;
	assert_true(kb_mp_int(kb_msg_body(rep), "x", &x));
	assert_int_equal(x, 41);
	kb_msg_free(rep);
	/* control plane -> worker: the worker registered its service upstream */
	kb_ctx *cc = kbt_client(f->h, "ctester", "plugin:ctester", plugin_groups, 2);
	int rc = KB_EUNAVAILABLE;
	for (int i = 0; i < 100 && rc == KB_EUNAVAILABLE; i++) {
		rc = kb_call(cc, "worker-echo", "whoami", NULL, 2000, &rep);
		if (rc == KB_EUNAVAILABLE)
			usleep(20000);
	}
	assert_int_equal(rc, 0);
	/* The worker trusts its uplink's stamp: the caller is the cp's client. */
	assert_true(kb_mp_streq(kb_msg_body(rep), "principal", "plugin:ctester"));
	kb_msg_free(rep);
	/* 16 MiB across processes' transport */
	size_t n = 16u << 20;
	char *blob = malloc(n);
	memset(blob, 0x5a, n);
	blob[n - 1] = 1;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, blob, n);
	assert_int_equal(kb_call(wc, "echo", "echo", kb_body_from_sbuf(&sb), 20000, &rep), 0);
	msgpack_sbuffer_destroy(&sb);
	const msgpack_object *o = kb_msg_body(rep);
	assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
	assert_int_equal(o->via.bin.size, n);
	assert_memory_equal(o->via.bin.ptr, blob, n);
	kb_msg_free(rep);
	free(blob);
	kbt_host_stop(w);
	/* the worker's services left with it */
	rc = kb_call(cc, "worker-echo", "whoami", NULL, 2000, &rep);
	assert_int_equal(rc, KB_EUNAVAILABLE);
}

static void test_join_refused(void **state)
{
	struct fixture *f = *state;
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof(yaml), "bus: {join: \"%s\", join_token: wrong-token, listen: []}\n",
	    f->url);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	assert_null(w);
	assert_non_null(strstr(err, "refused"));
	assert_non_null(strstr(err, "invalid bearer token"));
	/* a secret never shows in a message */
	assert_null(strstr(err, ADMIN_TOKEN));
}

static void test_no_hello(void **state)
{
	struct fixture *f = *state;
	struct raw *r = raw_dial(f->url);
	assert_int_equal(raw_send(r, KB_ENV_REQ, 5, NULL, NULL, "echo", "echo",
	                     kb_mp_body("{s:i}", "x", 1)), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_ERR);
	assert_int_equal(e->ecode, KB_EUNAUTHORIZED);
	assert_int_equal(e->id, 5);
	free(e);
	assert_true(raw_closed(r));
	raw_close(r);
}

static void test_wrong_token(void **state)
{
	struct fixture *f = *state;
	struct raw *r = raw_dial(f->url);
	assert_int_equal(raw_send(r, KB_ENV_HELLO, 1, NULL, NULL, NULL, NULL,
	                     kb_mp_body("{s:s}", "token", "not-a-token")), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_ERR);
	assert_int_equal(e->ecode, KB_EUNAUTHORIZED);
	free(e);
	assert_true(raw_closed(r));
	raw_close(r);
}

static void test_acl_denied(void **state)
{
	struct fixture *f = *state;
	struct raw *r = raw_hello(f->url, VIEW_TOKEN);
	assert_int_equal(raw_send(r, KB_ENV_REQ, 7, NULL, NULL, "echo", "echo", NULL), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_ERR);
	assert_int_equal(e->ecode, KB_EFORBIDDEN);
	assert_int_equal(e->id, 7);
	assert_non_null(strstr(e->emsg, "viewer"));
	free(e);
	raw_close(r);
}

static void test_forged_identity(void **state)
{
	struct fixture *f = *state;
	struct raw *r = raw_hello(f->url, ALICE_TOKEN);
	/* claims to be the API server */
	assert_int_equal(raw_send(r, KB_ENV_REQ, 9, "apiserver", "plugin:apiserver",
	                     "echo", "whoami", NULL), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_REP);
	kb_body *b = kb_body_new(e->body, e->body_len);
	assert_true(kb_mp_streq(kb_body_obj(b), "principal", "alice"));
	const char *src;
	size_t sl;
	assert_true(kb_mp_str(kb_body_obj(b), "src", &src, &sl));
	assert_true(sl >= 3 && strncmp(src, "raw", 3) == 0);
	kb_body_unref(b);
	/* and may not reach the store even as alice? masters may: but a
	 * forged principal does not make a viewer a frontend */
	raw_close(r);
	r = raw_hello(f->url, VIEW_TOKEN);
	assert_int_equal(raw_send(r, KB_ENV_REQ, 10, "apiserver", "plugin:apiserver",
	                     "echo", "whoami", NULL), 0);
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->ecode, KB_EFORBIDDEN);
	free(e);
	raw_close(r);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;
	struct kb_bus_stats *st = kb_bus_stats(kbt_host_core(f->h)->bus);
	unsigned long long before = atomic_load(&st->malformed);
	struct raw *r = raw_hello(f->url, ADMIN_TOKEN);
	/* a good request still works between bad ones */
	static const uint8_t not_map[] = { 0x93, 1, 2, 3 };
	static const uint8_t truncated[] = { 0x83, 0xa1, 'v', 0x01, 0xa1 };
	static const uint8_t bad_byte[] = { 0xc1 };
	static const uint8_t trailing[] = { 0x80, 0x00 };
	assert_int_equal(raw_send_bytes(r, not_map, sizeof(not_map)), 0);
	assert_int_equal(raw_send_bytes(r, truncated, sizeof(truncated)), 0);
	assert_int_equal(raw_send(r, KB_ENV_REQ, 11, NULL, NULL, "echo", "echo",
	                     kb_mp_body("{s:i}", "x", 5)), 0);
	struct kb_env *e = malloc(sizeof(*e));
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_REP);
	assert_int_equal(e->id, 11);
	/* another peer is served while this one sends garbage */
	struct raw *good = raw_hello(f->url, ALICE_TOKEN);
	for (int i = 0; i < 10; i++) {
		raw_send_bytes(r, bad_byte, sizeof(bad_byte));
		raw_send_bytes(r, trailing, sizeof(trailing));
	}
	assert_true(raw_closed(r));
	raw_close(r);
	assert_true(atomic_load(&st->malformed) >= before + 8);
	assert_int_equal(raw_send(good, KB_ENV_REQ, 12, NULL, NULL, "echo", "echo", NULL), 0);
	assert_int_equal(raw_recv(good, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_REP);
	assert_int_equal(e->id, 12);
	raw_close(good);
	/* a frame over bus.max_message: hung up at once */
	r = raw_hello(f->url, ADMIN_TOKEN);
	uint8_t huge[4] = { 0x7f, 0xff, 0xff, 0xff };
	raw_write(r, huge, 4);
	assert_true(raw_closed(r));
	raw_close(r);
	/* another protocol version */
	r = raw_dial(f->url);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	kb_mp_pack(&pk, "{s:i, s:s, s:i, s:{s:s}}", "v", 2, "t", "hello", "id", 1, "b", "token", ADMIN_TOKEN);
	raw_send_bytes(r, sb.data, (uint32_t)sb.size);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_ERR);
	assert_non_null(strstr(e->emsg, "protocol version 2"));
	assert_true(raw_closed(r));
	raw_close(r);
	/* a reply for a request the peer was never sent is ignored */
	r = raw_hello(f->url, ADMIN_TOKEN);
	raw_send(r, KB_ENV_REP, 424242, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(raw_send(r, KB_ENV_REQ, 13, NULL, NULL, "echo", "echo", NULL), 0);
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->id, 13);
	raw_close(r);
	free(e);
}

static void test_token_file_mode(void **state)
{
	char *dir = kbt_mkdtemp("mode");
	write_tokens(dir, 0644);
	char yaml[512], err[1024];
	snprintf(yaml, sizeof(yaml), "host: {data_dir: %s}\n", dir);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	assert_null(h);
	assert_non_null(strstr(err, "readable by others"));
	assert_non_null(strstr(err, "0644"));
	kbt_rmrf(dir);
	free(dir);
}

/* A loopback port nothing listens on. */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* bus.join with a dead first address still joins, as a YAML list and as
 * "a,b"; with every address dead the error names each. */
static void test_join_list_first_dead(void **state)
{
	struct fixture *f = *state;
	const char *tcp = kb_net_listen_url(kbt_host_core(f->h)->net, 1);
	assert_non_null(tcp);
	char dead[64], yaml[2048], err[1024];
	snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", dead_port());
	const char *forms[] = {
		"bus: {join: [\"%s\", \"%s\"], join_token: %s, listen: []}\n",
		"bus: {join: \"%s, %s\", join_token: %s, listen: []}\n",
	};
	for (size_t i = 0; i < 2; i++) {
		snprintf(yaml, sizeof(yaml), forms[i], dead, tcp, ADMIN_TOKEN);
		struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
		if (w == NULL)
			fail_msg("worker (%s): %s", yaml, err);
		struct kb_host *wh = kbt_host_core(w);
		assert_non_null(wh->join);
		assert_string_equal(wh->join[0], dead);
		assert_string_equal(wh->join[1], tcp);
		assert_null(wh->join[2]);
		const char *up = kb_net_uplink_url(wh->net);
		assert_non_null(up);
		assert_string_equal(up, tcp);
		kb_ctx *wc = kbt_client(w, "wtester", "plugin:wtester", plugin_groups, 2);
		kb_msg *rep;
		assert_int_equal(kb_call(wc, "echo", "echo", kb_mp_body("{s:i}", "x", 7), 2000, &rep), 0);
		kb_msg_free(rep);
		kbt_host_stop(w);
	}
	char dead2[64];
	snprintf(dead2, sizeof(dead2), "tcp://127.0.0.1:%d", dead_port());
	snprintf(yaml, sizeof(yaml), forms[0], dead, dead2, ADMIN_TOKEN);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	assert_null(w);
	printf("refused as expected: %s\n", err);
	assert_non_null(strstr(err, dead));
	assert_non_null(strstr(err, dead2));
	/* An empty list is an error, not "no uplink". */
	w = kbt_host_start("bus: {join: \" , \", listen: []}\n", err, sizeof(err));
	assert_null(w);
	assert_non_null(strstr(err, "bus.join"));
}

struct got {
	pthread_mutex_t mu;
	int n;
};

static void on_news(void *arg, const kb_msg *m)
{
	(void)m;
	struct got *g = arg;
	pthread_mutex_lock(&g->mu);
	g->n++;
	pthread_mutex_unlock(&g->mu);
}

static int got_n(struct got *g)
{
	pthread_mutex_lock(&g->mu);
	int n = g->n;
	pthread_mutex_unlock(&g->mu);
	return n;
}

/* Two control-plane hosts; the worker is on the first. The first goes
 * away: the worker moves to the second, calls go there, and its
 * subscription is registered there again. */
static void test_join_list_moves(void **state)
{
	struct fixture *f = *state;
	char *bdir = kbt_mkdtemp("remote-b");
	write_tokens(bdir, 0600);
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: cp-b, data_dir: %s}\n"
	    "bus:\n"
	    "  listen: [tcp://127.0.0.1:0]\n"
	    "plugins:\n"
	    "  - {name: echo, use: echo}\n",
	    bdir);
	struct kbt_host *b = kbt_host_start(yaml, err, sizeof(err));
	if (b == NULL)
		fail_msg("host b: %s", err);
	char a_url[256], b_url[256];
	snprintf(a_url, sizeof(a_url), "%s", kb_net_listen_url(kbt_host_core(f->h)->net, 1));
	snprintf(b_url, sizeof(b_url), "%s", kb_net_listen_url(kbt_host_core(b)->net, 0));
	snprintf(yaml, sizeof(yaml),
	    "host: {name: worker}\n"
	    "bus: {join: \"%s,%s\", join_token: %s, listen: []}\n",
	    a_url, b_url, ADMIN_TOKEN);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	if (w == NULL)
		fail_msg("worker: %s", err);
	struct kb_net *wn = kbt_host_core(w)->net;
	assert_string_equal(kb_net_uplink_url(wn), a_url);
	kb_ctx *wc = kbt_client(w, "wtester", "plugin:wtester", plugin_groups, 2);
	struct got g = { .mu = PTHREAD_MUTEX_INITIALIZER };
	assert_int_equal(kb_subscribe(wc, "news/x", on_news, &g), 0);

	/* Host a goes away. */
	kbt_host_stop(f->h);
	f->h = NULL;
	const char *up = NULL;
	for (int i = 0; i < 500; i++) {
		up = kb_net_uplink_url(wn);
		if (up && strcmp(up, b_url) == 0)
			break;
		usleep(10000);
	}
	assert_non_null(up);
	assert_string_equal(up, b_url);
	kb_msg *rep;
	assert_int_equal(kb_call(wc, "echo", "echo", kb_mp_body("{s:i}", "x", 8), 2000, &rep), 0);
	kb_msg_free(rep);
	/* Published on b, it reaches the worker's subscriber: the worker
	 * subscribed again there (asynchronously: publish until it lands). */
	kb_ctx *bc = kbt_client(b, "pub", "plugin:pub", plugin_groups, 2);
	for (int i = 0; i < 200 && got_n(&g) == 0; i++) {
		assert_int_equal(kb_publish(bc, "news/x", kb_mp_body("{s:i}", "v", i)), 0);
		usleep(10000);
	}
	assert_true(got_n(&g) > 0);
	kbt_host_stop(w);
	kbt_host_stop(b);
	kbt_rmrf(bdir);
	free(bdir);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `kubus run` with the echo plugin listening on `url` (loopback), in its
 * own process: f->child, killed by teardown (and with this process). */
static void child_host_start(struct fixture *f, const char *url)
{
	char cfg[600], lg[600], kubus[600], plugins[1300];
	f->child_dir = kbt_mkdtemp("remote-child");
	write_tokens(f->child_dir, 0600);
	snprintf(cfg, sizeof(cfg), "%s/host.yaml", f->child_dir);
	snprintf(lg, sizeof(lg), "%s/host.log", f->child_dir);
	FILE *cf = fopen(cfg, "w");
	assert_non_null(cf);
	fprintf(cf, "host: {name: cp-a, data_dir: %s}\n"
	    "bus: {listen: [\"%s\"]}\n"
	    "plugins:\n  - {name: echo, use: echo}\n",
	    f->child_dir, url);
	fclose(cf);
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(plugins, sizeof(plugins), "%s/plugins:%s/tests/plugins",
	    kbt_build_dir(), kbt_build_dir());
	char *argv[] = { kubus, "run", "-c", cfg, "--plugin-path", plugins, NULL };
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(lg, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	f->child = pid;
	char *l = kbt_wait_file(lg, "host running", 20000);
	if (l == NULL || strstr(l, "host running") == NULL) {
		char *all = kbt_slurp(lg);
		fail_msg("host in a child process did not start:\n%s", all ? all : "");
	}
	free(l);
}

/* Two control-plane hosts; the worker is on the first, which freezes
 * (SIGSTOP: its socket stays open, no FIN, no RST, so TCP notices
 * nothing). Within a few keepalive intervals the worker hangs up on it
 * and moves to the second. */
static void test_join_list_frozen(void **state)
{
	struct fixture *f = *state;
	char a_url[64], b_url[256], yaml[2048], err[1024];
	snprintf(a_url, sizeof(a_url), "tcp://127.0.0.1:%d", dead_port());
	child_host_start(f, a_url);
	/* b: the fixture's host, over tcp. */
	snprintf(b_url, sizeof(b_url), "%s", kb_net_listen_url(kbt_host_core(f->h)->net, 1));
	snprintf(yaml, sizeof(yaml),
	    "host: {name: worker}\n"
	    "bus: {join: \"%s,%s\", join_token: %s, listen: [],\n"
	    "      keepalive: 100ms, keepalive_timeout: 400ms}\n",
	    a_url, b_url, ADMIN_TOKEN);
	struct kbt_host *w = kbt_host_start(yaml, err, sizeof(err));
	if (w == NULL)
		fail_msg("worker: %s", err);
	struct kb_net *wn = kbt_host_core(w)->net;
	assert_string_equal(kb_net_uplink_url(wn), a_url);
	kb_ctx *wc = kbt_client(w, "wtester", "plugin:wtester", plugin_groups, 2);
	kb_msg *rep;
	assert_int_equal(kb_call(wc, "echo", "echo", kb_mp_body("{s:i}", "x", 1), 2000, &rep), 0);
	kb_msg_free(rep);
	/* Pings keep a live, idle uplink where it is. */
	usleep(1000 * 1000);
	assert_string_equal(kb_net_uplink_url(wn), a_url);

	assert_int_equal(kill(f->child, SIGSTOP), 0);
	int64_t t0 = mono_ms();
	const char *up = NULL;
	while (mono_ms() - t0 < 10000) {
		up = kb_net_uplink_url(wn);
		if (up && strcmp(up, b_url) == 0)
			break;
		usleep(10000);
	}
	int64_t took = mono_ms() - t0;
	printf("# moved off the frozen host in %lld ms\n", (long long)took);
	assert_non_null(up);
	assert_string_equal(up, b_url);
	/* 400 ms of silence, a tick, the first reconnect round (~100 ms). */
	assert_true(took < 2000);
	assert_int_equal(kb_call(wc, "echo", "echo", kb_mp_body("{s:i}", "x", 2), 2000, &rep), 0);
	kb_msg_free(rep);
	kbt_host_stop(w);
	kill(f->child, SIGCONT);
	kbt_kill(f->child);
	f->child = 0;
}

/* A host says it answers pings, answers each, and hangs up on a peer that
 * pinged and then went quiet for longer than its ping said; a peer that
 * never pinged is left alone however quiet it is. */
static void test_ping_and_silent_peer(void **state)
{
	struct fixture *f = *state;
	const char *tcp = kb_net_listen_url(kbt_host_core(f->h)->net, 1);
	struct kb_env *e = malloc(sizeof(*e));
	struct raw *quiet = raw_hello(tcp, ADMIN_TOKEN);
	struct raw *r = raw_dial(tcp);
	assert_int_equal(raw_send(r, KB_ENV_HELLO, 1, NULL, NULL, NULL, NULL,
	                     kb_mp_body("{s:s, s:s}", "token", ADMIN_TOKEN, "name", "raw")), 0);
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_REP);
	kb_body *hb = kb_body_new(e->body, e->body_len);
	bool ping = false;
	assert_true(kb_mp_bool(kb_body_obj(hb), "ping", &ping));
	assert_true(ping);
	kb_body_unref(hb);

	assert_int_equal(raw_send(r, KB_ENV_PING, 42, NULL, NULL, NULL, NULL,
	                     kb_mp_body("{s:i}", "t", 300)), 0);
	assert_int_equal(raw_recv(r, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_PONG);
	assert_int_equal(e->id, 42);
	int64_t t0 = mono_ms();
	assert_true(raw_closed(r));
	int64_t took = mono_ms() - t0;
	printf("# a silent peer was dropped after %lld ms\n", (long long)took);
	assert_true(took >= 250);
	assert_true(took < 2000);
	/* The peer that never pinged is still there. */
	assert_int_equal(raw_recv(quiet, e, 200), NNG_ETIMEDOUT);
	assert_int_equal(raw_send(quiet, KB_ENV_PING, 7, NULL, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(raw_recv(quiet, e, 2000), 0);
	assert_int_equal(e->t, KB_ENV_PONG);
	free(e);
	raw_close(r);
	raw_close(quiet);
}

static void test_keepalive_config(void **state)
{
	(void)state;
	char err[1024];
	struct kbt_host *h = kbt_host_start("bus: {listen: [], keepalive: 1s, keepalive_timeout: 1s}\n",
	    err, sizeof(err));
	assert_null(h);
	assert_non_null(strstr(err, "bus.keepalive_timeout"));
	h = kbt_host_start("bus: {listen: []}\n", err, sizeof(err));
	assert_non_null(h);
	assert_int_equal(kbt_host_core(h)->keepalive_ms, 5000);
	assert_int_equal(kbt_host_core(h)->keepalive_timeout_ms, 15000);
	kbt_host_stop(h);
	h = kbt_host_start("bus: {listen: [], keepalive: 0}\n", err, sizeof(err));
	assert_non_null(h);
	assert_int_equal(kbt_host_core(h)->keepalive_ms, 0);
	kbt_host_stop(h);
}

static void test_tcp_loopback_only(void **state)
{
	char err[1024];
	struct kbt_host *h = kbt_host_start("bus: {listen: [\"tcp://0.0.0.0:7999\"]}\n", err, sizeof(err));
	assert_null(h);
	assert_non_null(strstr(err, "loopback only"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_join_and_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acl_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_list_first_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_list_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_join_list_frozen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ping_and_silent_peer, setup, teardown),
		cmocka_unit_test(test_keepalive_config),
		cmocka_unit_test(test_token_file_mode),
		cmocka_unit_test(test_tcp_loopback_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
