/* plugins/ctrl-nodelifecycle/health.c — is a node alive: its Lease in
 * kube-node-lease renewed, or its Ready condition's heartbeat moved, within
 * grace_period; if not, the kubelet's conditions become Unknown
 * (Kubernetes' tryUpdateNodeHealth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlc.h"

/* The conditions the kubelet owns, which go Unknown with it. */
static const char *const kubelet_conds[] = { "Ready", "MemoryPressure",
	"DiskPressure", "PIDPressure" };
#define NCONDS (sizeof(kubelet_conds) / sizeof(kubelet_conds[0]))

static const msgpack_object *find_cond(const msgpack_object *node,
    const char *type)
{
	const msgpack_object *cs = kb_mp_get(node, "status.conditions");
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_streq(&cs->via.array.ptr[i], "type", type))
			return &cs->via.array.ptr[i];
	return NULL;
}

const char *nlc_ready_status(const msgpack_object *node)
{
	const msgpack_object *c = find_cond(node, "Ready");
	if (c && kb_mp_streq(c, "status", "True"))
		return "True";
	if (c && kb_mp_streq(c, "status", "False"))
		return "False";
	/* none yet: a new node, given a grace period before it is Unknown */
	return c ? "Unknown" : "";
}

static bool same(const char *kept, const msgpack_object *o, const char *path)
{
	const char *s;
	size_t len;
	if (!kb_mp_str(o, path, &s, &len))
		return kept == NULL;
	return kept && strlen(kept) == len && !memcmp(kept, s, len);
}

static void keep(char **dst, const msgpack_object *o, const char *path)
{
	free(*dst);
	*dst = kb_mp_strdup(o, path);
}

void nlc_probe(struct nlc *n, const char *name, const msgpack_object *node,
    bool *stale, int64_t *due_ms)
{
	kb_body *lb = kb_informer_get(n->leases, NLC_LEASE_NS, name);
	const msgpack_object *lease = lb ? kb_body_obj(lb) : NULL;
	const msgpack_object *ready = find_cond(node, "Ready");
	int64_t now = ctrl_now_ms();
	pthread_mutex_lock(&n->mu);
	struct nlc_node **pp = &n->health;
	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->next;
	struct nlc_node *h = *pp;
	bool first = false;
	if (h == NULL) {
		/* First sight (or a restart): a full grace period from now. */
		h = calloc(1, sizeof(*h));
		if (h && (h->name = strdup(name)) != NULL) {
			h->probe_ms = now;
			h->next = n->health;
			n->health = h;
			first = true;
		} else {
			free(h);
			h = NULL;
		}
	}
	int64_t probe = now;
	if (h) {
		bool moved = false;
		if (!same(h->renew, lease, "spec.renewTime")) {
			keep(&h->renew, lease, "spec.renewTime");
			moved = true;
		}
		if (!same(h->beat, ready, "lastHeartbeatTime")) {
			keep(&h->beat, ready, "lastHeartbeatTime");
			moved = true;
		}
		if (moved)
			h->probe_ms = now;
		probe = h->probe_ms;
	}
	pthread_mutex_unlock(&n->mu);
	if (lb)
		kb_body_unref(lb);
	if (first)
		kb_event_obj(n->c.events, "v1", "Node", node, false,
		    "RegisteredNode", "Node %s event: Registered Node %s in Controller",
		    name, name);
	*stale = now - probe > n->cfg.grace_ms;
	*due_ms = *stale ? -1 : probe + n->cfg.grace_ms - now + 1;
}

void nlc_forget(struct nlc *n, const char *name)
{
	pthread_mutex_lock(&n->mu);
	struct nlc_node **pp = &n->health;
	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->next;
	struct nlc_node *h = *pp;
	if (h) {
		*pp = h->next;
		free(h->name);
		free(h->renew);
		free(h->beat);
		free(h);
	}
	pthread_mutex_unlock(&n->mu);
}

void nlc_health_free(struct nlc *n)
{
	while (n->health) {
		struct nlc_node *h = n->health;
		n->health = h->next;
		free(h->name);
		free(h->renew);
		free(h->beat);
		free(h);
	}
}

static bool is_kubelet_cond(const msgpack_object *c)
{
	for (size_t i = 0; i < NCONDS; i++)
		if (kb_mp_streq(c, "type", kubelet_conds[i]))
			return true;
	return false;
}

/* A condition of the kubelet's, now Unknown: its other fields kept, the
 * transition time moved only when the status changes. */
static void pack_unknown(msgpack_packer *pk, const msgpack_object *c,
    const char *now)
{
	bool was_unknown = kb_mp_streq(c, "status", "Unknown");
	static const char *const replaced[] = { "status", "reason", "message",
		"lastTransitionTime" };
	uint32_t keep = 0;
	for (uint32_t i = 0; i < c->via.map.size; i++) {
		bool r = false;
		for (size_t k = 0; k < 4; k++)
			r |= kb_mp_is(&c->via.map.ptr[i].key, replaced[k]);
		keep += !r;
	}
	const msgpack_object *lt = kb_mp_key(c, "lastTransitionTime");
	msgpack_pack_map(pk, keep + 4);
	for (uint32_t i = 0; i < c->via.map.size; i++) {
		bool r = false;
		for (size_t k = 0; k < 4; k++)
			r |= kb_mp_is(&c->via.map.ptr[i].key, replaced[k]);
		if (r)
			continue;
		msgpack_pack_object(pk, c->via.map.ptr[i].key);
		msgpack_pack_object(pk, c->via.map.ptr[i].val);
	}
	kb_mp_pack(pk, "s:s, s:s, s:s", "status", "Unknown", "reason",
	    "NodeStatusUnknown", "message",
	    "Kubelet stopped posting node status.");
	if (was_unknown && lt)
		kb_mp_pack(pk, "s:o", "lastTransitionTime", lt);
	else
		kb_mp_pack(pk, "s:s", "lastTransitionTime", now);
}

int nlc_mark_unknown(struct nlc *n, kb_body **nodeb)
{
	const msgpack_object *node = kb_body_obj(*nodeb);
	const msgpack_object *cs = kb_mp_get(node, "status.conditions");
	bool arr = cs && cs->type == MSGPACK_OBJECT_ARRAY;
	uint32_t size = arr ? cs->via.array.size : 0;
	/* Already all Unknown: nothing to write. */
	bool todo = false;
	for (size_t k = 0; k < NCONDS; k++) {
		const msgpack_object *c = find_cond(node, kubelet_conds[k]);
		if (c == NULL ? k == 0 : !kb_mp_streq(c, "status", "Unknown"))
			todo = true;
		if (c && !kb_mp_streq(c, "status", "Unknown") &&
		    !kb_mp_streq(c, "reason", "NodeStatusUnknown"))
			todo = true;
	}
	if (!todo)
		return 0;
	char now[40], created[40] = "";
	ctrl_format_time(ctrl_now_ms(), now, sizeof(now));
	const char *s;
	size_t sl;
	if (kb_mp_str(node, "metadata.creationTimestamp", &s, &sl) &&
	    sl < sizeof(created))
		snprintf(created, sizeof(created), "%.*s", (int)sl, s);
	bool has_ready = find_cond(node, "Ready") != NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, size + !has_ready);
	for (uint32_t i = 0; i < size; i++) {
		const msgpack_object *c = &cs->via.array.ptr[i];
		if (c->type == MSGPACK_OBJECT_MAP && is_kubelet_cond(c))
			pack_unknown(&pk, c, now);
		else
			msgpack_pack_object(&pk, *c);
	}
	if (!has_ready)
		kb_mp_pack(&pk, "{s:s, s:s, s:s, s:s, s:s, s:s}", "type",
		    "Ready", "status", "Unknown", "reason",
		    "NodeStatusNeverUpdated", "message",
		    "Kubelet never posted node status.", "lastHeartbeatTime",
		    created[0] ? created : now, "lastTransitionTime", now);
	kb_body *b = ctrl_obj_set(node, "status.conditions", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	char *name = kb_mp_strdup(node, "metadata.name");
	kb_msg *rep = NULL;
	int rc = kb_api_update(n->c.ctx, &KB_GVR_NODES, NULL, name, "status", b,
	    &rep);
	if (rc == 0) {
		kb_info(n->c.ctx, "node stopped posting status",
		    "node=%s grace_period_ms=%lld", name,
		    (long long)n->cfg.grace_ms);
		kb_body_unref(*nodeb);
		*nodeb = kb_msg_body_ref(rep);
		kb_event_obj(n->c.events, "v1", "Node", kb_body_obj(*nodeb),
		    false, "NodeNotReady", "Node %s status is now: NodeNotReady",
		    name ? name : "");
	}
	kb_msg_free(rep);
	free(name);
	return rc;
}
