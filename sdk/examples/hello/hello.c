/* hello.c — the smallest useful Kubus plugin, built out of tree.
 *
 * It serves the bus service `hello` with one operation:
 *
 *     op "greet"   {name: str}  ->  {message: "<greeting>, <name>!"}
 *
 * where `greeting` comes from the plugin's config ("hello" by default):
 *
 *     plugins:
 *       - name: hello
 *         use: hello            # finds kubus-hello.so on the plugin path
 *         config:
 *           greeting: Hi
 *
 * It includes only the installed SDK (<kubus/kubus.h>) and builds with
 *
 *     cc -shared -fPIC -o kubus-hello.so hello.c \
 *         $(pkg-config --cflags --libs kubus-sdk)
 *
 * See the SDK's README.md for the rules this file follows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

/* --- config -------------------------------------------------------------- */

/* The options, declared as a table: kb_conf_opts() checks the `config:`
 * subtree against it (unknown keys, wrong types) and fills the struct, so
 * config errors read the same as every other plugin's:
 *   kubus.yaml:7:9: unknown key `greting` in plugins[0].config (hello) */
struct hello_cfg {
	char *greeting; /* malloc'd by kb_conf_opts(); kb_conf_opts_free() */
};

static const struct kb_opt hello_opts[] = {
	KB_OPT_STR("greeting", struct hello_cfg, greeting, "hello",
	    "the word said before the name"),
	KB_OPT_END,
};

/* --- state ---------------------------------------------------------------- */

/* Everything the plugin owns; the host hands it back to every callback. It is
 * written only in init and read afterwards, so the handler needs no lock. */
struct hello {
	kb_ctx *ctx; /* valid from init until fini */
	struct hello_cfg cfg;
};

/* --- the service ----------------------------------------------------------- */

/* "greet" {name} -> {message}. */
static void greet(struct hello *h, kb_msg *req)
{
	const msgpack_object *body = kb_msg_body(req);
	const char *name;
	size_t len;

	/* Say what was expected and what came. */
	if (!kb_mp_str(body, "name", &name, &len)) {
		char got[128];
		kb_reply_err(req, KB_EINVAL,
		    "greet wants {name: string}, got %s",
		    kb_mp_repr(body, got, sizeof(got)));
		return;
	}

	/* Strings inside a msgpack value are not NUL-terminated: use the
	 * length. */
	int n = snprintf(NULL, 0, "%s, %.*s!", h->cfg.greeting, (int)len, name);
	char *text = malloc((size_t)n + 1);
	if (text == NULL) {
		kb_reply_err(req, KB_EINTERNAL, "out of memory");
		return;
	}
	snprintf(text, (size_t)n + 1, "%s, %.*s!", h->cfg.greeting, (int)len,
	    name);
	kb_body *rep = kb_mp_body("{s:S}", "message", text, (size_t)n);
	free(text);
	if (rep == NULL) {
		kb_reply_err(req, KB_EINTERNAL, "out of memory");
		return;
	}
	/* kb_reply() takes the body on success; on error it is still ours (and
	 * req is freed either way). */
	if (kb_reply(req, rep) != 0)
		kb_body_unref(rep);
}

/* Runs on this instance's dispatch thread, one request at a time: it must
 * not block (hand slow work to a thread of your own and reply from there).
 * We own `req` and answer it exactly once. */
static void hello_serve(void *arg, kb_msg *req)
{
	struct hello *h = arg;
	const char *op = kb_msg_op(req);

	if (strcmp(op, "greet") == 0)
		greet(h, req);
	else
		kb_reply_err(req, KB_EBADREQUEST,
		    "unknown op `%s`: the hello service has `greet`", op);
}

/* --- lifecycle -------------------------------------------------------------- */

/* Main thread, before any plugin starts. Parse the config, register the
 * service (only allowed here), hand the host our state. `conf` is borrowed
 * until we return: kb_conf_opts() copied the strings we keep. */
static int hello_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct hello *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	h->ctx = ctx;

	int rc = kb_conf_opts(conf, hello_opts, &h->cfg, kb_instance(ctx), err,
	    sizeof(err));
	if (rc != 0) {
		free(h);
		return kb_fail(ctx, rc, "%s", err);
	}
	rc = kb_serve(ctx, "hello", hello_serve, h);
	if (rc != 0)
		goto out_free_cfg;
	*state = h;
	return 0;

	/* A failed init frees what it made: fini is not called. */
out_free_cfg:
	kb_conf_opts_free(hello_opts, &h->cfg);
	free(h);
	return kb_fail(ctx, rc, "cannot serve `hello`: %s", kb_strerror(rc));
}

/* Main thread, after every plugin's init succeeded: the bus is live. */
static int hello_start(kb_ctx *ctx, void *state)
{
	struct hello *h = state;

	/* kv values are preformatted: quote any that may hold spaces. */
	kb_info(ctx, "hello is ready", "service=hello greeting=\"%s\"",
	    h->cfg.greeting);
	return 0;
}

/* Main thread, at shutdown. We started no threads, so nothing to stop. */
static void hello_stop(kb_ctx *ctx, void *state)
{
	(void)state;
	kb_debug(ctx, "hello stopping", NULL);
}

/* After stop (or a failed start): the bus endpoint is closed, no handler
 * runs any more; free everything. */
static void hello_fini(void *state)
{
	struct hello *h = state;

	kb_conf_opts_free(hello_opts, &h->cfg);
	free(h);
}

/* --- the descriptor ---------------------------------------------------------- */

/* The one exported symbol (the SDK's pkg-config flags build with
 * -fvisibility=hidden; KB_PLUGIN_EXPORT makes this visible). The header
 * first: magic, ABI version and size, checked by the host field by field. */
KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "hello",
		.version = "1.0.0",
		.description = "says hello over the bus (SDK example)",
		.kind = KB_KIND_SERVICE,
		.init = hello_init,
		.start = hello_start,
		.stop = hello_stop,
		.fini = hello_fini,
	};
	return &p;
}
