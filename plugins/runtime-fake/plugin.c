/* plugins/runtime-fake/plugin.c — the descriptor and config of the hollow
 * runtime (kind runtime: loaded by the kubelet with kb_ext_load).
 *
 *   runtime: runtime-fake
 *   runtime_config:
 *     start_delay: 0s        # container_start takes this long
 *     ip_prefix: "10.88"     # pod IPs 10.88.x.y
 *     images:                # per image (name without tag), besides the
 *       fail: {exit_code: 1, run_for: 0s}      # built-in fail, complete,
 *       slow: {ignore_term: true}              # sleep-on-term, missing
 */
#include <stdlib.h>
#include <string.h>

#include "fake.h"

struct cfg {
	int64_t start_delay_ms;
	char *ip_prefix;
	char *version;
	const kb_conf *images;
};

static const struct kb_opt opts[] = {
	KB_OPT_DURATION("start_delay", struct cfg, start_delay_ms, "0s",
	    "how long a start takes"),
	KB_OPT_STR("ip_prefix", struct cfg, ip_prefix, "10.88",
	    "first two octets of pod IPs"),
	KB_OPT_STR("version", struct cfg, version, "0.1.0",
	    "reported as containerRuntimeVersion fake://VERSION"),
	KB_OPT_NODE("images", struct cfg, images,
	    "per-image behaviour: exit_code, run_for, ignore_term, missing, log"),
	KB_OPT_END,
};

static int fake_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct cfg c = { 0 };
	if (kb_conf_opts(conf, opts, &c, "runtime-fake", err, sizeof(err)) != 0)
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct fake *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		kb_conf_opts_free(opts, &c);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	f->ctx = ctx;
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->log_mu, NULL);
	f->start_delay_ms = c.start_delay_ms;
	f->ip_prefix = c.ip_prefix;
	f->version = c.version;
	c.ip_prefix = c.version = NULL;
	int rc = fake_behave_load(f, c.images);
	kb_conf_opts_free(opts, &c);
	if (rc) {
		fake_behave_free(f);
		free(f->ip_prefix);
		free(f->version);
		pthread_mutex_destroy(&f->mu);
		pthread_mutex_destroy(&f->log_mu);
		free(f);
		return rc;
	}
	*state = f;
	return 0;
}

static void fake_fini(void *state)
{
	struct fake *f = state;
	if (f == NULL)
		return;
	fake_logs_flush_all(f);
	fake_free_all(f);
	fake_behave_free(f);
	free(f->ip_prefix);
	free(f->version);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->log_mu);
	free(f);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "runtime-fake",
		.version = "0.1.0",
		.description =
		    "hollow container runtime: no processes, scripted exits",
		.kind = KB_KIND_RUNTIME,
		.init = fake_init,
		.fini = fake_fini,
		.ops = &fake_ops,
	};
	return &p;
}
