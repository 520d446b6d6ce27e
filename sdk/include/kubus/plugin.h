/* kubus/plugin.h — the plugin descriptor and its lifecycle.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * kb_plugin_describe(), returning a pointer to a static, const descriptor.
 * The host checks the header first, field by field (magic, ABI major must be
 * equal, ABI minor must not be newer than the host's, size), then the kind,
 * then calls init() and start() in config order and stop() in reverse.
 *
 *     KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
 *     {
 *             static const struct kb_plugin p = {
 *                     .hdr = KB_PLUGIN_HDR,
 *                     .name = "store-lmdb", .kind = KB_KIND_STORE,
 *                     .version = "0.1.0",
 *                     .init = store_init, .start = store_start,
 *                     .stop = store_stop,
 *             };
 *             return &p;
 *     }
 *
 * Extensions (sched-policy, runtime, proxy-backend) use the same descriptor;
 * their `ops` points at the kind's vtable and they are loaded by their owner
 * through kb_ext_load(), never listed as top-level plugins.
 */
#ifndef KUBUS_PLUGIN_H
#define KUBUS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KB_PLUGIN_MAGIC 0x4b554255u /* "KUBU" */
#define KB_ABI_MAJOR 1
#define KB_ABI_MINOR 0

#define KB_PLUGIN_EXPORT __attribute__((visibility("default")))
#define KB_PLUGIN_SYMBOL "kb_plugin_describe"

struct kb_plugin_hdr {
	uint32_t magic;     /* KB_PLUGIN_MAGIC */
	uint16_t abi_major; /* must equal the host's */
	uint16_t abi_minor; /* must be <= the host's */
	uint32_t size;      /* sizeof(struct kb_plugin) the plugin was built with */
};

#define KB_PLUGIN_HDR                                                        \
	{                                                                    \
		.magic = KB_PLUGIN_MAGIC, .abi_major = KB_ABI_MAJOR,         \
		.abi_minor = KB_ABI_MINOR,                                   \
		.size = (uint32_t)sizeof(struct kb_plugin)                   \
	}

/* Kinds. Values are part of the ABI: append, never renumber. */
enum kb_kind {
	KB_KIND_NONE = 0,
	KB_KIND_STORE = 1,
	KB_KIND_FRONTEND = 2,
	KB_KIND_CONTROLLER = 3,
	KB_KIND_SCHEDULER = 4,
	KB_KIND_SCHED_POLICY = 5, /* extension */
	KB_KIND_NODE = 6,
	KB_KIND_RUNTIME = 7,      /* extension */
	KB_KIND_PROXY = 8,
	KB_KIND_PROXY_BACKEND = 9, /* extension */
	KB_KIND_DNS = 10,
	KB_KIND_SERVICE = 11,     /* any other bus service (examples, tools) */
	KB_KIND_MAX_
};

/* "store", "sched-policy", …; NULL for an unknown value. */
const char *kb_kind_name(int kind);
/* The kind for a name; KB_KIND_NONE when unknown. */
int kb_kind_from_name(const char *name);
/* True for kinds that are loaded only as extensions of another plugin. */
int kb_kind_is_extension(int kind);

typedef struct kb_ctx kb_ctx;
typedef struct kb_conf kb_conf;

struct kb_plugin {
	struct kb_plugin_hdr hdr;
	const char *name;        /* the plugin's own name, e.g. "store-lmdb" */
	const char *version;     /* its version, free form */
	const char *description; /* one line for `kubus plugins` */
	int kind;                /* enum kb_kind */

	/* Called once, on the host's main thread, before any plugin starts.
	 * Check `conf` (borrowed until init returns; NULL when the entry has
	 * no `config:`) against an option table with kb_conf_opts(),
	 * register services, subscriptions and extensions through `ctx`, and
	 * set *state to the plugin's private data. Return 0 or a kb_err and
	 * say why with kb_fail(); a failed init must free what it allocated
	 * (fini is not called for it). Required for plugins; optional for
	 * extensions, whose init runs inside their owner's kb_ext_load(). */
	int (*init)(kb_ctx *ctx, const kb_conf *conf, void **state);

	/* Called on the main thread after every plugin's init succeeded, in
	 * config order. The bus is live: requests may be sent from here on.
	 * May be NULL. Never called for extensions. */
	int (*start)(kb_ctx *ctx, void *state);

	/* Called on the main thread in reverse order at shutdown (or when a
	 * later plugin failed to start). Stop threads; no more bus calls after
	 * it returns. Called only if start succeeded. May be NULL. Never
	 * called for extensions. */
	void (*stop)(kb_ctx *ctx, void *state);

	/* Free the state; called after stop (or after a failed start), and
	 * for every plugin whose init succeeded, once its bus endpoint is
	 * closed: no handler runs any more. For an extension: from
	 * kb_ext_unload(). May be NULL. */
	void (*fini)(void *state);

	/* Extensions only: the kind's vtable (struct kb_sched_policy_ops, …),
	 * whose first member is its size. */
	const void *ops;
};

/* The type of kb_plugin_describe. */
typedef const struct kb_plugin *(*kb_plugin_describe_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
