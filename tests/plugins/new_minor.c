/* tests/plugins/new_minor.c — needs a newer minor ABI than the host has. */
#include <kubus/kubus.h>

static int init(kb_ctx *ctx, const kb_conf *conf, void **state) { return 0; }

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = { .magic = KB_PLUGIN_MAGIC, .abi_major = KB_ABI_MAJOR,
		         .abi_minor = KB_ABI_MINOR + 7, .size = sizeof(struct kb_plugin) },
		.name = "new-minor", .kind = KB_KIND_SERVICE, .init = init,
	};
	return &p;
}
