/* plugins/dns/plugin.c — the cluster DNS plugin (kind dns): config,
 * informers on Services and EndpointSlices feeding the zone, the server.
 *
 *   - name: dns
 *     use: dns
 *     config:
 *       listen: ["0.0.0.0:53"]   # IPv4:PORT, UDP and TCP on each
 *       domain: cluster.local
 *       ttl: 30
 *       upstream: ""             # IP:PORT for names outside the domain;
 *                                #   empty: REFUSED
 *       upstream_timeout: 2s
 *       udp_workers: 2           # sockets (SO_REUSEPORT) and threads
 *       tcp_idle: 10s
 *       tcp_max_conns: 64
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/client.h>
#include <kubus/kubus.h>

#include "dns.h"

struct cfg {
	char **listen;
	char *domain;
	int64_t ttl;
	char *upstream;
	int64_t upstream_timeout_ms;
	int64_t udp_workers;
	int64_t tcp_idle_ms;
	int64_t tcp_max_conns;
};

static const struct kb_opt opts[] = {
	KB_OPT_STRLIST("listen", struct cfg, listen,
	    "IPv4:PORT addresses to serve on, UDP and TCP (default 0.0.0.0:53)"),
	KB_OPT_STR("domain", struct cfg, domain, "cluster.local",
	    "the cluster domain"),
	KB_OPT_INT("ttl", struct cfg, ttl, "30", 0, 86400,
	    "TTL of every answer, and the negative TTL"),
	KB_OPT_STR("upstream", struct cfg, upstream, "",
	    "IP:PORT to forward other names to; empty: REFUSED"),
	KB_OPT_DURATION("upstream_timeout", struct cfg, upstream_timeout_ms,
	    "2s", "wait this long for the upstream"),
	KB_OPT_INT("udp_workers", struct cfg, udp_workers, "2", 1, 64,
	    "UDP sockets and threads per address"),
	KB_OPT_DURATION("tcp_idle", struct cfg, tcp_idle_ms, "10s",
	    "close TCP connections idle this long"),
	KB_OPT_INT("tcp_max_conns", struct cfg, tcp_max_conns, "64", 1, 4096,
	    "TCP connections at once"),
	KB_OPT_END,
};

struct dns {
	kb_ctx *ctx;
	struct cfg cfg;
	struct dns_zone zone;
	struct dns_upstream up;
	struct kb_informer *svcs, *slices;
	struct dns_server *server;
};

static void svc_add(void *arg, const msgpack_object *o)
{
	dns_zone_service(&((struct dns *)arg)->zone, o, false);
}
static void svc_update(void *arg, const msgpack_object *old,
    const msgpack_object *o)
{
	svc_add(arg, o);
}
static void svc_del(void *arg, const msgpack_object *o)
{
	dns_zone_service(&((struct dns *)arg)->zone, o, true);
}
static void slice_add(void *arg, const msgpack_object *o)
{
	dns_zone_slice(&((struct dns *)arg)->zone, o, false);
}
static void slice_update(void *arg, const msgpack_object *old,
    const msgpack_object *o)
{
	slice_add(arg, o);
}
static void slice_del(void *arg, const msgpack_object *o)
{
	dns_zone_slice(&((struct dns *)arg)->zone, o, true);
}

static void dns_free(struct dns *d)
{
	kb_informer_free(d->svcs);
	kb_informer_free(d->slices);
	if (d->zone.domain != NULL)
		dns_zone_fini(&d->zone);
	kb_conf_opts_free(opts, &d->cfg);
	free(d);
}

static int dns_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct dns *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	d->ctx = ctx;
	if (kb_conf_opts(conf, opts, &d->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(d);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	if (d->cfg.upstream[0] != '\0' &&
	    (strchr(d->cfg.upstream, ':') == NULL ||
		strlen(d->cfg.upstream) >= sizeof(d->up.addr))) {
		snprintf(err, sizeof(err), "upstream `%s`: want IPv4:PORT",
		    d->cfg.upstream);
		dns_free(d);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	snprintf(d->up.addr, sizeof(d->up.addr), "%s", d->cfg.upstream);
	d->up.timeout_ms = (int)d->cfg.upstream_timeout_ms;
	if (d->cfg.domain[0] == '\0' || strlen(d->cfg.domain) > 200 ||
	    dns_zone_init(&d->zone, d->cfg.domain, (uint32_t)d->cfg.ttl)) {
		snprintf(err, sizeof(err), "domain `%s`: not a domain",
		    d->cfg.domain);
		dns_free(d);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	static const struct kb_informer_handlers hs = { svc_add, svc_update,
		svc_del };
	static const struct kb_informer_handlers hl = { slice_add,
		slice_update, slice_del };
	struct kb_informer_opts io = { 0 };
	d->svcs = kb_informer_new(ctx, &KB_GVR_SERVICES, &io, &hs, d);
	d->slices = kb_informer_new(ctx, &KB_GVR_ENDPOINTSLICES, &io, &hl, d);
	if (d->svcs == NULL || d->slices == NULL) {
		dns_free(d);
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	}
	*state = d;
	return 0;
}

static int dns_start(kb_ctx *ctx, void *state)
{
	struct dns *d = state;
	char err[256];
	static char *def[] = { "0.0.0.0:53", NULL };
	struct dns_server_opts o = {
		.listen = d->cfg.listen != NULL ? d->cfg.listen : def,
		.udp_workers = (int)d->cfg.udp_workers,
		.tcp_idle_ms = (int)d->cfg.tcp_idle_ms,
		.tcp_max_conns = (int)d->cfg.tcp_max_conns,
	};
	if (dns_server_start(&d->zone, &d->up, &o, &d->server, err,
		sizeof(err)))
		return kb_fail(ctx, KB_ESYS, "%s", err);
	if (kb_informer_start(d->svcs) || kb_informer_start(d->slices)) {
		dns_server_stop(d->server);
		d->server = NULL;
		return kb_fail(ctx, KB_EUNAVAILABLE, "cannot start informers");
	}
	kb_log(ctx, KB_LOG_INFO, "serving", "domain=%s listen=%s",
	    d->zone.domain, o.listen[0]);
	return 0;
}

static void dns_stop(kb_ctx *ctx, void *state)
{
	struct dns *d = state;
	dns_server_stop(d->server);
	d->server = NULL;
	kb_informer_free(d->svcs);
	kb_informer_free(d->slices);
	d->svcs = d->slices = NULL;
}

static void dns_fini(void *state)
{
	dns_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "dns",
		.version = "0.1.0",
		.description = "cluster DNS: services, endpoints and pods of "
			       "the cluster domain over UDP and TCP",
		.kind = KB_KIND_DNS,
		.init = dns_init,
		.start = dns_start,
		.stop = dns_stop,
		.fini = dns_fini,
	};
	return &p;
}
