/* plugins/proxy/config.c — the proxy's options. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

static const struct kb_opt opts[] = {
	KB_OPT_STR("backend", struct px_cfg, backend, "proxy-nftables",
	    "the backend extension: proxy-nftables, proxy-iptables, proxy-userspace, a path"),
	KB_OPT_NODE("backend_config", struct px_cfg, backend_config,
	    "handed to the backend's init"),
	KB_OPT_STR("node_name", struct px_cfg, node_name, NULL,
	    "this node's name, for traffic policy Local (default: the host's name)"),
	KB_OPT_STR("node_ip", struct px_cfg, node_ip, NULL,
	    "this node's IPv4 address, for NodePorts (default: none; NodePorts still answer on every local address)"),
	KB_OPT_STR("service_cidr", struct px_cfg, service_cidr, "10.96.0.0/12",
	    "ClusterIPs come from here; the rest of it is rejected"),
	KB_OPT_DURATION("min_sync_period", struct px_cfg, min_sync_ms, "50ms",
	    "changes within this window go to the backend as one batch"),
	KB_OPT_DURATION("retry_period", struct px_cfg, retry_ms, "500ms",
	    "first back-off after a failed sync (doubles, capped at 30s)"),
	KB_OPT_BOOL("route", struct px_cfg, route, "true",
	    "route the service CIDR to the dummy device kubus-px0"),
	KB_OPT_BOOL("cleanup_others", struct px_cfg, cleanup_others, "true",
	    "at start, clean up after every other known backend"),
	KB_OPT_END,
};

static bool cidr_ok(const char *s)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	if (slash == NULL || (size_t)(slash - s) >= sizeof(buf))
		return false;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct in_addr a;
	char *end;
	long len = strtol(slash + 1, &end, 10);
	return inet_pton(AF_INET, buf, &a) == 1 && *end == '\0' &&
	    end != slash + 1 && len >= 8 && len <= 32;
}

int px_config(struct proxy *px, const kb_conf *conf)
{
	char err[512];
	struct px_cfg *c = &px->cfg;
	if (kb_conf_opts(conf, opts, c, "proxy", err, sizeof(err)) != 0)
		return kb_fail(px->ctx, KB_EINVAL, "%s", err);
	if (!cidr_ok(c->service_cidr))
		return kb_fail(px->ctx, KB_EINVAL,
		    "proxy config: service_cidr must be an IPv4 CIDR like 10.96.0.0/12, got `%s`",
		    c->service_cidr);
	struct in_addr a;
	if (c->node_ip && inet_pton(AF_INET, c->node_ip, &a) != 1)
		return kb_fail(px->ctx, KB_EINVAL,
		    "proxy config: node_ip must be an IPv4 address, got `%s`",
		    c->node_ip);
	if (c->min_sync_ms < 0 || c->retry_ms <= 0)
		return kb_fail(px->ctx, KB_EINVAL,
		    "proxy config: min_sync_period must be >= 0 and retry_period > 0");
	char host[256] = "";
	const char *n = c->node_name;
	if (n == NULL || *n == '\0')
		n = kb_host_name(px->ctx);
	if (n == NULL || *n == '\0') {
		gethostname(host, sizeof(host) - 1);
		n = host;
	}
	px->node = strdup(*n ? n : "localhost");
	if (px->node == NULL)
		return kb_fail(px->ctx, KB_ENOMEM, "out of memory");
	for (char *p = px->node; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

void px_config_free(struct proxy *px)
{
	kb_conf_opts_free(opts, &px->cfg);
	free(px->node);
	px->node = NULL;
}
