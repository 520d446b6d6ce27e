/* tests/plugins/crash.c — a plugin that crashes on request (isolation). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kubus/kubus.h>

static void serve(void *arg, kb_msg *req)
{
	if (!strcmp(kb_msg_op(req), "abort"))
		abort();
	kb_reply(req, kb_mp_body("{s:I}", "pid", (int64_t)getpid()));
}

static int init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	*state = NULL;
	return kb_serve(ctx, "crash", serve, NULL);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR, .name = "crash", .kind = KB_KIND_SERVICE,
		.description = "answers its pid; aborts on op abort (tests)",
		.init = init,
	};
	return &p;
}
