/* tests/plugins/fail_init.c — fails in init or start, as config says. */
#include <string.h>

#include <kubus/kubus.h>

struct cfg {
	char *fail_at;
};

static const struct kb_opt opts[] = {
	KB_OPT_STR("fail_at", struct cfg, fail_at, "init", "init or start"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct cfg c = { 0 };
	char err[512];
	if (kb_conf_opts(conf, opts, &c, kb_instance(ctx), err, sizeof(err)))
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	bool at_init = strcmp(c.fail_at, "init") == 0;
	kb_conf_opts_free(opts, &c);
	if (at_init)
		return kb_fail(ctx, KB_EINVAL, "refusing to init: told to fail");
	*state = NULL;
	return 0;
}

static int start(kb_ctx *ctx, void *state)
{
	return kb_fail(ctx, KB_EUNAVAILABLE, "refusing to start: told to fail");
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR, .name = "fail-init", .kind = KB_KIND_SERVICE,
		.init = init, .start = start,
	};
	return &p;
}
