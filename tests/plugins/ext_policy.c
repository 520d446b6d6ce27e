/* tests/plugins/ext_policy.c — an extension (sched-policy kind) whose
 * vtable doubles its input times a weight from its config. */
#include <stdlib.h>

#include <kubus/kubus.h>

#include "ext_test.h"

struct cfg {
	int64_t weight;
};

static const struct kb_opt opts[] = {
	KB_OPT_INT("weight", struct cfg, weight, "1", 0, 100, "score weight"),
	KB_OPT_END,
};

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct cfg *c = calloc(1, sizeof(*c));
	char err[512];
	if (kb_conf_opts(conf, opts, c, kb_instance(ctx), err, sizeof(err))) {
		free(c);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	*state = c;
	return 0;
}

static void fini(void *state) { free(state); }

static int64_t score(void *state, int64_t x)
{
	return 2 * x * ((struct cfg *)state)->weight;
}

static const struct ext_test_ops ops = { .size = sizeof(ops), .score = score };

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR, .name = "ext-policy",
		.kind = KB_KIND_SCHED_POLICY, .init = init, .fini = fini,
		.ops = &ops,
	};
	return &p;
}
