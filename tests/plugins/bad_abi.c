/* tests/plugins/bad_abi.c — built against a future major ABI. */
#include <kubus/kubus.h>

static int init(kb_ctx *ctx, const kb_conf *conf, void **state) { return 0; }

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = { .magic = KB_PLUGIN_MAGIC, .abi_major = 2, .abi_minor = 1,
		         .size = sizeof(struct kb_plugin) },
		.name = "bad-abi", .kind = KB_KIND_SERVICE, .init = init,
	};
	return &p;
}
