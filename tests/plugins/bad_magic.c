/* tests/plugins/bad_magic.c — a descriptor that is not ours. */
#include <kubus/kubus.h>

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = { .magic = 0xdeadbeef, .abi_major = 1 },
		.name = "bad-magic", .kind = KB_KIND_SERVICE,
	};
	return &p;
}
