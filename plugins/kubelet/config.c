/* plugins/kubelet/config.c — the kubelet's options and what they default
 * to on this machine (node name, address, cpu and memory capacity). */
#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubelet.h"

static const struct kb_opt opts[] = {
	KB_OPT_STR("node_name", struct kl_cfg, node_name, NULL,
	    "the Node's name (default: the host's name)"),
	KB_OPT_STR("address", struct kl_cfg, address, NULL,
	    "InternalIP (default: the first non-loopback IPv4)"),
	KB_OPT_STR("cpu", struct kl_cfg, cpu, NULL,
	    "cpu capacity, e.g. 4 or 3500m (default: online CPUs)"),
	KB_OPT_STR("memory", struct kl_cfg, memory, NULL,
	    "memory capacity, e.g. 8Gi (default: physical memory)"),
	KB_OPT_INT("pods", struct kl_cfg, pods, "110", 1, 100000,
	    "pod capacity"),
	KB_OPT_STR("runtime", struct kl_cfg, runtime, "runtime-runc",
	    "the runtime extension: runtime-runc, runtime-fake, a path"),
	KB_OPT_NODE("runtime_config", struct kl_cfg, runtime_config,
	    "handed to the runtime's init"),
	KB_OPT_DURATION("lease_interval", struct kl_cfg, lease_ms, "10s",
	    "how often the node Lease is renewed"),
	KB_OPT_DURATION("lease_duration", struct kl_cfg, lease_duration_ms,
	    "40s", "the Lease's leaseDurationSeconds"),
	KB_OPT_DURATION("status_interval", struct kl_cfg, status_ms, "1m",
	    "how often node status is reported"),
	KB_OPT_DURATION("sync_period", struct kl_cfg, sync_ms, "1s",
	    "how often every pod is checked against the runtime"),
	KB_OPT_DURATION("backoff_initial", struct kl_cfg, backoff_initial_ms,
	    "10s", "first CrashLoopBackOff delay"),
	KB_OPT_DURATION("backoff_max", struct kl_cfg, backoff_max_ms, "5m",
	    "CrashLoopBackOff cap"),
	KB_OPT_SIZE("container_log_max_size", struct kl_cfg, log_max_bytes,
	    "10Mi", "a container log over this is rotated (0: never)"),
	KB_OPT_INT("workers", struct kl_cfg, workers, "4", 1, KL_WORKERS_MAX,
	    "pods synced at once"),
	KB_OPT_INT("event_qps", struct kl_cfg, event_qps, "50", 0, 1000000,
	    "Events posted per second past the burst; the rest wait their turn (eventRecordQPS; 0: no limit)"),
	KB_OPT_INT("event_burst", struct kl_cfg, event_burst, "100", 1, 1000000,
	    "Events posted at once before event_qps applies (eventBurst)"),
	KB_OPT_STR("runtime_fallback", struct kl_cfg, runtime_fallback, NULL,
	    "runtime used (with a warning) when `runtime` cannot start, e.g. runtime-fake when not root"),
	KB_OPT_STR("network", struct kl_cfg, network, "auto",
	    "pod networking: cni, none, or auto (cni unless the runtime is the fake)"),
	KB_OPT_STR("cni_bin_dir", struct kl_cfg, cni_bin_dir, "/usr/lib/cni",
	    "where the CNI plugins are"),
	KB_OPT_STR("pod_cidr", struct kl_cfg, pod_cidr, NULL,
	    "pod IP range of this node (default: Node.spec.podCIDR)"),
	KB_OPT_STR("bridge", struct kl_cfg, bridge, "kubus0",
	    "the CNI bridge's name"),
	KB_OPT_STR("cluster_dns", struct kl_cfg, cluster_dns, NULL,
	    "nameserver IP for dnsPolicy ClusterFirst"),
	KB_OPT_STR("cluster_domain", struct kl_cfg, cluster_domain,
	    "cluster.local", "the cluster's DNS domain"),
	KB_OPT_STR("resolv_conf", struct kl_cfg, resolv_conf,
	    "/etc/resolv.conf", "the file dnsPolicy Default copies"),
	KB_OPT_END,
};

/* A CPU quantity as Kubernetes writes it: "4", "0.5" or "3500m". */
static bool cpu_ok(const char *s)
{
	size_t n = strspn(s, "0123456789.");
	return n > 0 && (s[n] == '\0' || (s[n] == 'm' && s[n + 1] == '\0'));
}

/* The node's address: not loopback, and not the pods' own bridge or
 * veths (which come and go with pods and restarts). */
static char *first_ipv4(const char *bridge)
{
	struct ifaddrs *ifs, *i;
	char buf[INET_ADDRSTRLEN] = "127.0.0.1";
	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i; i = i->ifa_next) {
			if (i->ifa_addr == NULL ||
			    i->ifa_addr->sa_family != AF_INET ||
			    (i->ifa_flags & IFF_LOOPBACK) ||
			    !(i->ifa_flags & IFF_UP) ||
			    (bridge && !strcmp(i->ifa_name, bridge)) ||
			    !strncmp(i->ifa_name, "veth", 4))
				continue;
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
			    sizeof(buf));
			break;
		}
		freeifaddrs(ifs);
	}
	return strdup(buf);
}

/* A node name is a DNS subdomain: lower-case it as the kubelet does. */
static char *node_name(kb_ctx *ctx, const char *given)
{
	char host[256] = "";
	const char *n = given;
	if (n == NULL || *n == '\0')
		n = kb_host_name(ctx);
	if (n == NULL || *n == '\0') {
		gethostname(host, sizeof(host) - 1);
		n = host;
	}
	char *s = strdup(*n ? n : "localhost");
	for (char *p = s; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* The same shape as kb_conf_opts' errors: FILE:LINE:COL: `key` in WHERE … */
static int bad(struct kubelet *kl, const kb_conf *conf, const char *key,
    const char *want, const char *got)
{
	const kb_conf *n = kb_conf_get(conf, key);
	return kb_fail(kl->ctx, KB_EINVAL,
	    "%s:%d:%d: `%s` in %s (kubelet) must be %s, got `%s`",
	    kb_conf_file(n), kb_conf_line(n), kb_conf_col(n), key,
	    kb_conf_where(conf), want, got);
}

int kl_config(struct kubelet *kl, const kb_conf *conf)
{
	char err[512];
	if (kb_conf_opts(conf, opts, &kl->cfg, "kubelet", err, sizeof(err)) !=
	    0)
		return kb_fail(kl->ctx, KB_EINVAL, "%s", err);
	struct kl_cfg *c = &kl->cfg;
	if (c->cpu && !cpu_ok(c->cpu))
		return bad(kl, conf, "cpu", "a CPU quantity (like 4 or 3500m)",
		    c->cpu);
	int64_t mem = 0;
	if (c->memory && (kb_conf_to_size(c->memory, &mem) != 0 || mem <= 0))
		return bad(kl, conf, "memory", "a size (like 8Gi)", c->memory);
	if (c->lease_ms <= 0 || c->sync_ms <= 0 || c->status_ms <= 0 ||
	    c->backoff_max_ms < c->backoff_initial_ms)
		return kb_fail(kl->ctx, KB_EINVAL,
		    "kubelet config: lease_interval, sync_period and status_interval must be > 0 and backoff_max >= backoff_initial");
	if (c->cpu)
		snprintf(kl->cpu, sizeof(kl->cpu), "%s", c->cpu);
	else
		snprintf(kl->cpu, sizeof(kl->cpu), "%ld",
		    sysconf(_SC_NPROCESSORS_ONLN));
	if (mem == 0)
		mem = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
	snprintf(kl->memory, sizeof(kl->memory), "%lldKi",
	    (long long)(mem / 1024));
	kl->node = node_name(kl->ctx, c->node_name);
	kl->address = c->address ? strdup(c->address) : first_ipv4(c->bridge);
	if (kl->node == NULL || kl->address == NULL ||
	    asprintf(&kl->root, "%s/kubelet/%s", kb_data_dir(kl->ctx),
		kl->node) < 0) {
		kl->root = NULL;
		return kb_fail(kl->ctx, KB_ENOMEM, "out of memory");
	}
	snprintf(kl->service, sizeof(kl->service), "kubelet/%s", kl->node);
	if (strcmp(c->network, "auto") && strcmp(c->network, "cni") &&
	    strcmp(c->network, "none"))
		return bad(kl, conf, "network", "auto, cni or none", c->network);
	if (c->pod_cidr && !kl_cidr_ok(c->pod_cidr))
		return bad(kl, conf, "pod_cidr", "a CIDR (like 10.244.0.0/24)",
		    c->pod_cidr);
	struct in_addr a;
	struct in6_addr a6;
	if (c->cluster_dns && inet_pton(AF_INET, c->cluster_dns, &a) != 1 &&
	    inet_pton(AF_INET6, c->cluster_dns, &a6) != 1)
		return bad(kl, conf, "cluster_dns", "an IP address",
		    c->cluster_dns);
	if (strlen(c->bridge) == 0 || strlen(c->bridge) >= IFNAMSIZ ||
	    strpbrk(c->bridge, "/ \t"))
		return bad(kl, conf, "bridge", "an interface name (1-15 chars)",
		    c->bridge);
	if (c->pod_cidr)
		snprintf(kl->pod_cidr, sizeof(kl->pod_cidr), "%s", c->pod_cidr);
	return 0;
}

/* "10.244.0.0/24" or "fd00::/64": an address, a slash, a prefix length. */
bool kl_cidr_ok(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	if (slash == NULL || slash - s >= (long)sizeof(addr) || !slash[1])
		return false;
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - s), s);
	char *end;
	long bits = strtol(slash + 1, &end, 10);
	struct in_addr a;
	struct in6_addr a6;
	if (*end)
		return false;
	if (inet_pton(AF_INET, addr, &a) == 1)
		return bits >= 1 && bits <= 30;
	return inet_pton(AF_INET6, addr, &a6) == 1 && bits >= 1 && bits <= 126;
}

void kl_config_free(struct kubelet *kl)
{
	kb_conf_opts_free(opts, &kl->cfg);
	free(kl->node);
	free(kl->address);
	free(kl->root);
}
