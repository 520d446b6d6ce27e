/* tests/plugins/echo.c — a service for bus tests.
 *
 * ops: "echo" answers the body; "sleep" {ms} answers after ms on a thread;
 * "hold" never answers (timeouts, service gone); "order" {sender, n}
 * checks that each sender's n arrive in order; "publish" {topic, body}
 * publishes body on topic; "whoami" answers the stamped sender.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kubus/kubus.h>

struct echo {
	kb_ctx *ctx;
	char *service;
	pthread_mutex_t mu;
	char senders[64][64];
	int64_t last[64];
	int nsenders;
	kb_msg *held[1024];
	int nheld;
};

struct cfg {
	char *service;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("service", struct cfg, service, "echo", "service name to serve"),
	KB_OPT_END,
};

struct delayed {
	kb_msg *req;
	int64_t ms;
};

static void *sleeper(void *arg)
{
	struct delayed *d = arg;
	usleep((useconds_t)d->ms * 1000);
	kb_reply(d->req, kb_msg_body_ref(d->req));
	free(d);
	return NULL;
}

static int check_order(struct echo *e, const char *sender, size_t sl, int64_t n)
{
	pthread_mutex_lock(&e->mu);
	int i;
	for (i = 0; i < e->nsenders; i++)
		if (strlen(e->senders[i]) == sl && !memcmp(e->senders[i], sender, sl))
			break;
	if (i == e->nsenders && i < 64) {
		memcpy(e->senders[i], sender, sl < 63 ? sl : 63);
		e->last[i] = -1;
		e->nsenders++;
	}
	int ok = i < 64 && n == e->last[i] + 1;
	if (i < 64)
		e->last[i] = n;
	pthread_mutex_unlock(&e->mu);
	return ok;
}

static void serve(void *arg, kb_msg *req)
{
	struct echo *e = arg;
	const char *op = kb_msg_op(req);
	const msgpack_object *b = kb_msg_body(req);
	if (!strcmp(op, "echo")) {
		kb_reply(req, kb_msg_body_ref(req));
	} else if (!strcmp(op, "sleep")) {
		struct delayed *d = malloc(sizeof(*d));
		pthread_t t;
		d->req = req;
		if (!kb_mp_int(b, "ms", &d->ms))
			d->ms = 10;
		pthread_create(&t, NULL, sleeper, d);
		pthread_detach(t);
	} else if (!strcmp(op, "hold")) {
		pthread_mutex_lock(&e->mu);
		if (e->nheld < 1024)
			e->held[e->nheld++] = req;
		else
			kb_reply_err(req, KB_ETOOMANY, "holding too many");
		pthread_mutex_unlock(&e->mu);
	} else if (!strcmp(op, "order")) {
		const char *s;
		size_t sl;
		int64_t n;
		if (!kb_mp_str(b, "sender", &s, &sl) || !kb_mp_int(b, "n", &n))
			kb_reply_err(req, KB_EINVAL, "want {sender, n}");
		else if (!check_order(e, s, sl, n))
			kb_reply_err(req, KB_ECONFLICT, "out of order: %lld", (long long)n);
		else
			kb_reply(req, NULL);
	} else if (!strcmp(op, "publish")) {
		char *topic = kb_mp_strdup(b, "topic");
		const msgpack_object *pb = kb_mp_get(b, "body");
		kb_body *body = kb_mp_body("o", pb);
		int rc = topic ? kb_publish(e->ctx, topic, body) : KB_EINVAL;
		if (rc)
			kb_body_unref(body);
		free(topic);
		if (rc)
			kb_reply_err(req, rc, "publish: %s", kb_strerror(rc));
		else
			kb_reply(req, NULL);
	} else if (!strcmp(op, "whoami")) {
		kb_reply(req, kb_mp_body("{s:s, s:s, s:I}", "src", kb_msg_src(req),
		    "principal", kb_msg_principal(req), "pid", (int64_t)getpid()));
	} else {
		kb_reply_err(req, KB_EBADREQUEST, "unknown op `%s`", op);
	}
}

static int echo_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct cfg c = { 0 };
	char err[512];
	if (kb_conf_opts(conf, opts, &c, kb_instance(ctx), err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct echo *e = calloc(1, sizeof(*e));
	e->ctx = ctx;
	e->service = c.service;
	pthread_mutex_init(&e->mu, NULL);
	int rc = kb_serve(ctx, e->service, serve, e);
	if (rc) {
		kb_conf_opts_free(opts, &c);
		free(e);
		return kb_fail(ctx, rc, "cannot serve %s", c.service);
	}
	*state = e;
	return 0;
}

static void echo_stop(kb_ctx *ctx, void *state)
{
	struct echo *e = state;
	/* Held requests are answered before the service goes away. */
	pthread_mutex_lock(&e->mu);
	for (int i = 0; i < e->nheld; i++)
		kb_reply_err(e->held[i], KB_EUNAVAILABLE, "echo stopping");
	e->nheld = 0;
	pthread_mutex_unlock(&e->mu);
}

static void echo_fini(void *state)
{
	struct echo *e = state;
	free(e->service);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "echo",
		.version = "1.0",
		.description = "answers what it is sent (tests)",
		.kind = KB_KIND_SERVICE,
		.init = echo_init,
		.stop = echo_stop,
		.fini = echo_fini,
	};
	return &p;
}
