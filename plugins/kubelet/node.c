/* plugins/kubelet/node.c — the Node object: registration and status
 * (capacity, allocatable, addresses, conditions, nodeInfo). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "kubelet.h"

/* The server's /version gitVersion: kubectl compares the two. */
#define KUBELET_VERSION KUBUS_KUBE_VERSION

static void read_line(const char *path, char *buf, size_t len)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	fclose(f);
}

static const char *arch(const char *machine)
{
	if (!strcmp(machine, "x86_64"))
		return "amd64";
	if (!strcmp(machine, "aarch64"))
		return "arm64";
	return machine;
}

static void pack_condition(msgpack_packer *pk, const char *type,
    const char *status, const char *reason, const char *message,
    const char *now, const char *since)
{
	kb_mp_pack(pk, "{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "status",
	    status, "reason", reason, "message", message, "lastHeartbeatTime",
	    now, "lastTransitionTime", since);
}

/* {capacity, allocatable, addresses, conditions, nodeInfo, daemonEndpoints} */
static void pack_status(struct kubelet *kl, msgpack_packer *pk)
{
	char now[32], pods[24], machine_id[64], boot_id[64],
	    rtv[2 * KB_RT_ID_MAX + 4];
	struct utsname u;
	kl_rfc3339(kl_wall_ms(), now, sizeof(now));
	snprintf(pods, sizeof(pods), "%lld", (long long)kl->cfg.pods);
	read_line("/etc/machine-id", machine_id, sizeof(machine_id));
	read_line("/proc/sys/kernel/random/boot_id", boot_id, sizeof(boot_id));
	snprintf(rtv, sizeof(rtv), "%s://%s", kl->rt_info.name,
	    kl->rt_info.version);
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));

	msgpack_pack_map(pk, 6);
	for (int i = 0; i < 2; i++)
		kb_mp_pack(pk, "s:{s:s, s:s, s:s}",
		    i ? "allocatable" : "capacity", "cpu", kl->cpu, "memory",
		    kl->memory, "pods", pods);
	kb_mp_pack(pk, "s:[{s:s, s:s}, {s:s, s:s}]", "addresses", "type",
	    "InternalIP", "address", kl->address, "type", "Hostname", "address",
	    kl->node);
	kb_mp_pack_cstr(pk, "conditions");
	msgpack_pack_array(pk, 4);
	pack_condition(pk, "MemoryPressure", "False",
	    "KubeletHasSufficientMemory",
	    "kubelet has sufficient memory available", now, kl->started_at);
	pack_condition(pk, "DiskPressure", "False", "KubeletHasNoDiskPressure",
	    "kubelet has no disk pressure", now, kl->started_at);
	pack_condition(pk, "PIDPressure", "False", "KubeletHasSufficientPID",
	    "kubelet has sufficient PID available", now, kl->started_at);
	pack_condition(pk, "Ready", "True", "KubeletReady",
	    "kubelet is posting ready status", now, kl->started_at);
	kb_mp_pack(pk, "s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "nodeInfo", "machineID", machine_id, "systemUUID", machine_id,
	    "bootID", boot_id, "kernelVersion", u.release, "osImage", "Kubus",
	    "containerRuntimeVersion", rtv, "kubeletVersion", KUBELET_VERSION,
	    "kubeProxyVersion", KUBELET_VERSION, "operatingSystem", "linux",
	    "architecture", arch(u.machine));
	kb_mp_pack(pk, "s:{s:{s:i}}", "daemonEndpoints", "kubeletEndpoint",
	    "Port", 10250);
}

static kb_body *status_patch(struct kubelet *kl)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	kb_mp_pack_cstr(&pk, "status");
	pack_status(kl, &pk);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* Node.spec.podCIDR (set by nodeipam) when the config gave none. */
static void keep_cidr(struct kubelet *kl, const msgpack_object *node)
{
	const char *s;
	size_t len;
	if (kl->cfg.pod_cidr || node == NULL ||
	    !kb_mp_str(node, "spec.podCIDR", &s, &len) || len == 0 ||
	    len >= sizeof(kl->pod_cidr))
		return;
	char cidr[sizeof(kl->pod_cidr)];
	snprintf(cidr, sizeof(cidr), "%.*s", (int)len, s);
	if (!kl_cidr_ok(cidr))
		return;
	pthread_mutex_lock(&kl->mu);
	bool changed = strcmp(kl->pod_cidr, cidr) != 0;
	memcpy(kl->pod_cidr, cidr, sizeof(cidr));
	pthread_mutex_unlock(&kl->mu);
	if (changed)
		kb_info(kl->ctx, "pod CIDR from the Node", "node=%s cidr=%s",
		    kl->node, cidr);
}

void kl_node_fetch_cidr(struct kubelet *kl)
{
	kb_msg *rep = NULL;
	if (kb_api_get(kl->ctx, &KB_GVR_NODES, NULL, kl->node, &rep) == 0)
		keep_cidr(kl, kb_msg_body(rep));
	kb_msg_free(rep);
}

static void keep_uid(struct kubelet *kl, kb_msg *rep)
{
	keep_cidr(kl, kb_msg_body(rep));
	char *uid = kb_mp_strdup(kb_msg_body(rep), "metadata.uid");
	if (uid == NULL)
		return;
	pthread_mutex_lock(&kl->mu);
	free(kl->node_uid);
	kl->node_uid = uid;
	pthread_mutex_unlock(&kl->mu);
}

/* What Kubernetes' kubelet records about its Node once it runs (its
 * conditions set for the first time), as `kubectl describe node` shows:
 * the Node is named by its name, also as its uid, in "default". */
static void announce(struct kubelet *kl)
{
	static const char *const is_now[] = { "NodeHasSufficientMemory",
		"NodeHasNoDiskPressure", "NodeHasSufficientPID" };
	struct kb_event_ref ref = { NULL, "Node", NULL, kl->node, kl->node,
		NULL };
	kb_eventf(kl->events, &ref, false, "Starting", "Starting kubelet.");
	for (size_t i = 0; i < sizeof(is_now) / sizeof(is_now[0]); i++)
		kb_eventf(kl->events, &ref, false, is_now[i],
		    "Node %s status is now: %s", kl->node, is_now[i]);
	kb_eventf(kl->events, &ref, false, "NodeAllocatableEnforced",
	    "Updated Node Allocatable limit across pods");
	kb_eventf(kl->events, &ref, false, "NodeReady",
	    "Node %s status is now: NodeReady", kl->node);
}

int kl_node_register(struct kubelet *kl)
{
	struct utsname u;
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	kb_mp_pack(&pk, "s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}", "apiVersion",
	    "v1", "kind", "Node", "metadata", "name", kl->node, "labels",
	    "kubernetes.io/hostname", kl->node, "kubernetes.io/os", "linux",
	    "kubernetes.io/arch", arch(u.machine));
	/* A pod CIDR from the config is this node's: say so in its spec. */
	if (kl->cfg.pod_cidr)
		kb_mp_pack(&pk, "s:{s:s, s:[s]}", "spec", "podCIDR",
		    kl->cfg.pod_cidr, "podCIDRs", kl->cfg.pod_cidr);
	else
		kb_mp_pack(&pk, "s:{}", "spec");
	kb_mp_pack_cstr(&pk, "status");
	pack_status(kl, &pk);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	kb_msg *rep = NULL;
	int rc = kb_api_create(kl->ctx, &KB_GVR_NODES, NULL, b, &rep);
	if (rc == KB_EEXIST) {
		kb_msg_free(rep);
		rep = NULL;
		rc = kb_api_get(kl->ctx, &KB_GVR_NODES, NULL, kl->node, &rep);
	}
	if (rc == 0)
		keep_uid(kl, rep);
	else
		kb_warn(kl->ctx, "cannot register the node",
		    "node=%s err=\"%s\"", kl->node, kb_strerror(rc));
	kb_msg_free(rep);
	if (rc == 0) {
		kb_info(kl->ctx, "node registered", "node=%s", kl->node);
		/* The create may have kept an older status: report ours now. */
		rc = kl_node_status(kl);
	}
	if (rc == 0 && !kl->announced) {
		kl->announced = true;
		announce(kl);
	}
	return rc;
}

int kl_node_status(struct kubelet *kl)
{
	kb_body *b = status_patch(kl);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_api_patch(kl->ctx, &KB_GVR_NODES, NULL, kl->node, "status",
	    "merge", b, &rep);
	if (rc == 0)
		keep_cidr(kl, kb_msg_body(rep));
	kb_msg_free(rep);
	if (rc == KB_ENOTFOUND) /* deleted under us: register again */
		kl->registered = false;
	if (rc)
		kb_warn(kl->ctx, "cannot report node status",
		    "node=%s err=\"%s\"", kl->node, kb_strerror(rc));
	return rc;
}
