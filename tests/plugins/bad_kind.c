/* tests/plugins/bad_kind.c — a kind the host does not know. */
#include <kubus/kubus.h>

static int init(kb_ctx *ctx, const kb_conf *conf, void **state) { return 0; }

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR, .name = "bad-kind", .kind = 99, .init = init,
	};
	return &p;
}
