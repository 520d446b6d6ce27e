/* kubus/host.h — the table of functions the host hands every plugin.
 *
 * As SQLite's extension API: the host passes a const table whose first
 * member is its size; the table only ever grows at its end. A plugin built
 * against an older SDK runs on a newer host; a plugin that wants a slot newer
 * than KB_ABI_MINOR 0 tests it with KB_HOST_HAS() first.
 *
 * Plugin code normally calls the SDK wrappers (kb_request(), kb_log(), …)
 * which go through this table; the table is public so that a fake host for
 * unit tests can fill one in (see sdk/README.md).
 */
#ifndef KUBUS_HOST_H
#define KUBUS_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kb_log_level {
	KB_LOG_ERROR = 0,
	KB_LOG_WARN = 1,
	KB_LOG_INFO = 2,
	KB_LOG_DEBUG = 3,
	KB_LOG_TRACE = 4,
};

/* A loaded extension: its descriptor, its vtable, and the state its init
 * returned. Owned by the host; release it with kb_ext_unload(). */
struct kb_ext {
	const struct kb_plugin *plugin;
	const void *ops;  /* == plugin->ops, the kind's vtable */
	void *state;      /* what the extension's init set */
	kb_ctx *ctx;      /* the extension's own context (logging, name) */
};

struct kb_host_api {
	uint32_t size; /* sizeof(struct kb_host_api) in the host */
	uint16_t abi_major, abi_minor;

	/* identity */
	const char *(*instance)(kb_ctx *ctx);  /* the instance name in config */
	const char *(*host_name)(kb_ctx *ctx); /* this host's name */
	const char *(*data_dir)(kb_ctx *ctx);  /* the host's data dir */

	/* logging: `msg` is the human sentence, `kv` preformatted key=value
	 * pairs (may be NULL). Any thread. */
	void (*log)(kb_ctx *ctx, int level, const char *msg, const char *kv);
	int (*log_enabled)(kb_ctx *ctx, int level);

	/* bus (see bus.h for the contracts) */
	int (*serve)(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg);
	int (*request)(kb_ctx *ctx, const char *service, const char *op,
	    kb_body *body, int timeout_ms, kb_reply_fn fn, void *arg);
	int (*reply)(kb_msg *req, kb_body *body, int code, const char *message);
	int (*subscribe)(kb_ctx *ctx, const char *pattern, kb_sub_fn fn, void *arg);
	int (*unsubscribe)(kb_ctx *ctx, const char *pattern);
	int (*publish)(kb_ctx *ctx, const char *topic, kb_body *body);

	/* extensions */
	int (*ext_load)(kb_ctx *ctx, int kind, const char *name,
	    const kb_conf *conf, struct kb_ext **out);
	void (*ext_unload)(kb_ctx *ctx, struct kb_ext *ext);

	/* the plugin search path, ':'-separated */
	const char *(*plugin_path)(kb_ctx *ctx);

	/* Record why init/start failed; the host prints it in its one-line
	 * failure message naming the plugin and file. */
	void (*fail)(kb_ctx *ctx, const char *reason);

	/* --- ABI 1.0 ends here; append new slots below. --- */

	/* ABI 1.1 (as runtime.h's, an older host lacks them: KB_HOST_HAS) */
	int (*serve_inline)(kb_ctx *ctx, const char *service, kb_serve_fn fn,
	    void *arg); /* kb_serve_inline (bus.h) */
};

/* Every context starts with the table; the rest is the host's. */
struct kb_ctx {
	const struct kb_host_api *api;
};

/* True when the host's table has `slot`. */
#define KB_HOST_HAS(ctx, slot)                                               \
	((ctx)->api->size >= offsetof(struct kb_host_api, slot) +            \
	        sizeof((ctx)->api->slot) &&                                  \
	    (ctx)->api->slot != NULL)

const char *kb_instance(kb_ctx *ctx);
const char *kb_host_name(kb_ctx *ctx);
const char *kb_data_dir(kb_ctx *ctx);

/* Load an extension of `kind` named `name` (a plugin name on the plugin
 * path, e.g. "sched-noderesources", or a path to a .so). The same ABI
 * checks as for plugins apply; its init runs with `conf` (may be NULL).
 * During the owner's init or start. */
int kb_ext_load(kb_ctx *ctx, int kind, const char *name, const kb_conf *conf,
    struct kb_ext **out);
void kb_ext_unload(kb_ctx *ctx, struct kb_ext *ext);

/* Structured logging: `level=info plugin=NAME msg="…" k=v …`.
 * kvfmt is a printf format producing space-separated key=value pairs, or
 * NULL. Any thread. */
void kb_log(kb_ctx *ctx, int level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));
int kb_log_enabled(kb_ctx *ctx, int level);

/* Say why init or start fails and return `code`:
 *     return kb_fail(ctx, KB_EINVAL, "cannot open %s: %s", path, why);  */
int kb_fail(kb_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define kb_error(ctx, msg, ...) kb_log(ctx, KB_LOG_ERROR, msg, __VA_ARGS__)
#define kb_warn(ctx, msg, ...) kb_log(ctx, KB_LOG_WARN, msg, __VA_ARGS__)
#define kb_info(ctx, msg, ...) kb_log(ctx, KB_LOG_INFO, msg, __VA_ARGS__)
#define kb_debug(ctx, msg, ...)                                              \
	do {                                                                 \
		if (kb_log_enabled(ctx, KB_LOG_DEBUG))                       \
			kb_log(ctx, KB_LOG_DEBUG, msg, __VA_ARGS__);         \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif
