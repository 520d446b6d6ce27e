/* plugins/ctrl-nodelifecycle/taint.c — the taints a node's state calls
 * for, as Kubernetes' TaintNodesByCondition (NoSchedule) and
 * doNoExecuteTaintingPass (NoExecute, rate-limited, held back in a full
 * disruption): a node that is not Ready gets not-ready or unreachable, and
 * loses them again when it is. Other taints are left as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlc.h"

struct want {
	const char *key;
	const char *effect;
};

/* Every key this controller manages; others are never touched. */
static const char *const managed[] = {
	NLC_NOT_READY,
	NLC_UNREACHABLE,
	"node.kubernetes.io/memory-pressure",
	"node.kubernetes.io/disk-pressure",
	"node.kubernetes.io/pid-pressure",
	"node.kubernetes.io/network-unavailable",
	"node.kubernetes.io/unschedulable",
};
#define NMANAGED (sizeof(managed) / sizeof(managed[0]))

static bool is_managed(const msgpack_object *taint)
{
	for (size_t i = 0; i < NMANAGED; i++)
		if (kb_mp_streq(taint, "key", managed[i]))
			return true;
	return false;
}

static bool cond_is(const msgpack_object *node, const char *type,
    const char *status)
{
	const msgpack_object *cs = kb_mp_get(node, "status.conditions");
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_streq(&cs->via.array.ptr[i], "type", type))
			return kb_mp_streq(&cs->via.array.ptr[i], "status",
			    status);
	return false;
}

static const msgpack_object *find_taint(const msgpack_object *node,
    const char *key, const char *effect)
{
	const msgpack_object *ts = kb_mp_get(node, "spec.taints");
	for (uint32_t i = 0;
	     ts && ts->type == MSGPACK_OBJECT_ARRAY && i < ts->via.array.size;
	     i++)
		if (kb_mp_streq(&ts->via.array.ptr[i], "key", key) &&
		    kb_mp_streq(&ts->via.array.ptr[i], "effect", effect))
			return &ts->via.array.ptr[i];
	return NULL;
}

bool nlc_tolerates(const msgpack_object *tol, const msgpack_object *taint)
{
	const char *te, *ke, *tk, *kk;
	size_t tel = 0, kel = 0, tkl = 0, kkl = 0;
	kb_mp_str(tol, "effect", &te, &tel);
	kb_mp_str(taint, "effect", &ke, &kel);
	if (tel && (tel != kel || memcmp(te, ke, tel)))
		return false;
	kb_mp_str(tol, "key", &tk, &tkl);
	kb_mp_str(taint, "key", &kk, &kkl);
	if (tkl && (tkl != kkl || memcmp(tk, kk, tkl)))
		return false;
	if (kb_mp_streq(tol, "operator", "Exists"))
		return true;
	if (tkl == 0)
		return false; /* an empty key needs Exists */
	const char *tv = "", *kv = "";
	size_t tvl = 0, kvl = 0;
	kb_mp_str(tol, "value", &tv, &tvl);
	kb_mp_str(taint, "value", &kv, &kvl);
	return tvl == kvl && !memcmp(tv, kv, tvl);
}

/* One token per NoExecute tainting, refilled at eviction_rate per second,
 * at most one banked (Kubernetes' RateLimitedTimedQueue). 0: no limit. */
static bool take_token(struct nlc *n, int64_t *wait_ms)
{
	if (n->cfg.eviction_rate <= 0)
		return true;
	int64_t now = ctrl_now_ms();
	bool ok;
	pthread_mutex_lock(&n->mu);
	n->tokens +=
	    (double)(now - n->tokens_at) * n->cfg.eviction_rate / 1000.0;
	if (n->tokens > 1.0)
		n->tokens = 1.0;
	n->tokens_at = now;
	ok = n->tokens >= 1.0;
	if (ok)
		n->tokens -= 1.0;
	else
		*wait_ms = (int64_t)((1.0 - n->tokens) * 1000.0 /
			       n->cfg.eviction_rate) +
		    1;
	pthread_mutex_unlock(&n->mu);
	return ok;
}

struct count {
	int ready, not_ready;
};

static void count_one(void *arg, const msgpack_object *node)
{
	struct count *c = arg;
	if (!strcmp(nlc_ready_status(node), "True"))
		c->ready++;
	else
		c->not_ready++;
}

/* No node Ready at all: the control plane has most likely lost its
 * network, not every node at once; Kubernetes evicts nothing then. */
static bool full_disruption(struct nlc *n)
{
	struct count c = { 0 };
	kb_informer_each(n->nodes, count_one, &c);
	bool full = c.ready == 0 && c.not_ready > 0;
	pthread_mutex_lock(&n->mu);
	bool log = full != n->disruption_logged;
	n->disruption_logged = full;
	pthread_mutex_unlock(&n->mu);
	if (log && full)
		kb_warn(n->c.ctx,
		    "no node is ready: full disruption, no NoExecute taints",
		    "nodes=%d", c.not_ready);
	else if (log)
		kb_info(n->c.ctx, "a node is ready again: evictions resume",
		    "ready=%d", c.ready);
	return full;
}

int nlc_sync_taints(struct nlc *n, kb_body **nodeb, int64_t *due_ms)
{
	const msgpack_object *node = kb_body_obj(*nodeb);
	struct want want[NMANAGED + 2];
	size_t nw = 0;
	const char *ready = nlc_ready_status(node);
	const char *down = !strcmp(ready, "False") ? NLC_NOT_READY :
	    !strcmp(ready, "Unknown")              ? NLC_UNREACHABLE :
						     NULL;
	if (down)
		want[nw++] = (struct want){ down, "NoSchedule" };
	static const struct {
		const char *cond, *key;
	} by_cond[] = {
		{ "MemoryPressure", "node.kubernetes.io/memory-pressure" },
		{ "DiskPressure", "node.kubernetes.io/disk-pressure" },
		{ "PIDPressure", "node.kubernetes.io/pid-pressure" },
		{ "NetworkUnavailable",
		    "node.kubernetes.io/network-unavailable" },
	};
	for (size_t i = 0; i < sizeof(by_cond) / sizeof(by_cond[0]); i++)
		if (cond_is(node, by_cond[i].cond, "True"))
			want[nw++] =
			    (struct want){ by_cond[i].key, "NoSchedule" };
	bool unsched = false;
	kb_mp_bool(node, "spec.unschedulable", &unsched);
	if (unsched)
		want[nw++] = (struct want){ "node.kubernetes.io/unschedulable",
			"NoSchedule" };
	bool took = false;
	if (down) {
		int64_t wait = 0;
		const char *other = !strcmp(down, NLC_NOT_READY) ?
		    NLC_UNREACHABLE :
		    NLC_NOT_READY;
		/* already evicting (or not-ready turning unreachable, a swap
		 * as Kubernetes does): no new token */
		if (find_taint(node, down, "NoExecute") ||
		    find_taint(node, other, "NoExecute"))
			want[nw++] = (struct want){ down, "NoExecute" };
		else if (!full_disruption(n) && (took = take_token(n, &wait)))
			want[nw++] = (struct want){ down, "NoExecute" };
		else if (wait > 0 && (*due_ms < 0 || wait < *due_ms))
			*due_ms = wait;
	}

	/* Same managed set as now? Then nothing to write. */
	const msgpack_object *ts = kb_mp_get(node, "spec.taints");
	bool arr = ts && ts->type == MSGPACK_OBJECT_ARRAY;
	uint32_t size = arr ? ts->via.array.size : 0, nmanaged_now = 0,
		 nother = 0;
	for (uint32_t i = 0; i < size; i++) {
		if (is_managed(&ts->via.array.ptr[i]))
			nmanaged_now++;
		else
			nother++;
	}
	bool differs = nmanaged_now != nw;
	for (size_t i = 0; !differs && i < nw; i++)
		differs = find_taint(node, want[i].key, want[i].effect) == NULL;
	if (!differs)
		return 0;

	char now[40];
	ctrl_format_time(ctrl_now_ms(), now, sizeof(now));
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, nother + (uint32_t)nw);
	for (uint32_t i = 0; i < size; i++)
		if (!is_managed(&ts->via.array.ptr[i]))
			msgpack_pack_object(&pk, ts->via.array.ptr[i]);
	for (size_t i = 0; i < nw; i++) {
		const msgpack_object *had =
		    find_taint(node, want[i].key, want[i].effect);
		if (had)
			msgpack_pack_object(&pk, *had);
		else if (!strcmp(want[i].effect, "NoExecute"))
			kb_mp_pack(&pk, "{s:s, s:s, s:s}", "key", want[i].key,
			    "effect", want[i].effect, "timeAdded", now);
		else
			kb_mp_pack(&pk, "{s:s, s:s}", "key", want[i].key,
			    "effect", want[i].effect);
	}
	kb_body *b = ctrl_obj_set(node, "spec.taints", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	char *name = kb_mp_strdup(node, "metadata.name");
	kb_msg *rep = NULL;
	int rc =
	    kb_api_update(n->c.ctx, &KB_GVR_NODES, NULL, name, NULL, b, &rep);
	if (rc == 0) {
		kb_info(n->c.ctx, "node taints updated",
		    "node=%s ready=%s taints=%zu", name, ready, nw);
		kb_body_unref(*nodeb);
		*nodeb = kb_msg_body_ref(rep);
	} else if (took) {
		pthread_mutex_lock(&n->mu);
		n->tokens += 1.0; /* not spent: the taint was not written */
		pthread_mutex_unlock(&n->mu);
	}
	if (rc && rc != KB_ECONFLICT && rc != KB_ENOTFOUND) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(n->c.ctx, "cannot update node taints",
		    "node=%s err=%s message=\"%s\"", name, kb_err_reason(rc),
		    why);
	}
	kb_msg_free(rep);
	free(name);
	return rc;
}
