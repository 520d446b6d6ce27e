/* tests/plugins/ext_user.c — loads the extension its config names and
 * serves "ext" {x} -> {score} through the extension's vtable. */
#include <stdlib.h>

#include <kubus/kubus.h>

#include "ext_test.h"

struct cfg {
	char *extension;
	const kb_conf *args;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR_REQ("extension", struct cfg, extension, "extension to load"),
	KB_OPT_NODE("args", struct cfg, args, "its config"),
	KB_OPT_END,
};

struct user {
	kb_ctx *ctx;
	struct kb_ext *ext;
};

static void serve(void *arg, kb_msg *req)
{
	struct kb_ext *ext = ((struct user *)arg)->ext;
	const struct ext_test_ops *ops = ext->ops;
	int64_t x = 0;
	kb_mp_int(kb_msg_body(req), "x", &x);
	kb_reply(req, kb_mp_body("{s:I}", "score", ops->score(ext->state, x)));
}

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct cfg c = { 0 };
	char err[512];
	struct kb_ext *ext;
	if (kb_conf_opts(conf, opts, &c, kb_instance(ctx), err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	int rc = kb_ext_load(ctx, KB_KIND_SCHED_POLICY, c.extension, c.args, &ext);
	kb_conf_opts_free(opts, &c);
	if (rc)
		return rc; /* kb_ext_load said why */
	struct user *u = calloc(1, sizeof(*u));
	u->ctx = ctx;
	u->ext = ext;
	*state = u;
	return kb_serve(ctx, "ext", serve, u);
}

/* After the endpoint is closed no request can reach the extension. */
static void fini(void *state)
{
	struct user *u = state;
	kb_ext_unload(u->ctx, u->ext);
	free(u);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR, .name = "ext-user", .kind = KB_KIND_SERVICE,
		.init = init, .fini = fini,
	};
	return &p;
}
