/* plugins/ctrl-nodelifecycle/evict.c — what happens to the pods of a node
 * that is down: marked not Ready (Kubernetes' MarkPodsNotReady, so that
 * Services stop sending them traffic), and deleted once a NoExecute taint
 * they do not tolerate is on the node, or when the tolerationSeconds of the
 * tolerations they do have ran out (the taint manager's rules; the API
 * server's DefaultTolerationSeconds gives every pod 300 s for not-ready and
 * unreachable). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nlc.h"

struct on_node {
	const char *node;
	size_t nodelen;
	char **keys; /* "ns/name" */
	size_t n, cap;
};

static void on_node_one(void *arg, const msgpack_object *pod)
{
	struct on_node *o = arg;
	const char *nn;
	size_t nl;
	char key[512];
	if (!kb_mp_str(pod, "spec.nodeName", &nn, &nl) || nl != o->nodelen ||
	    memcmp(nn, o->node, nl) || !kb_object_key(pod, key, sizeof(key)))
		return;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		char **k = realloc(o->keys, cap * sizeof(*k));
		if (k == NULL)
			return;
		o->keys = k;
		o->cap = cap;
	}
	if ((o->keys[o->n] = strdup(key)) != NULL)
		o->n++;
}

static void pods_on(struct nlc *n, const char *node, struct on_node *o)
{
	memset(o, 0, sizeof(*o));
	o->node = node;
	o->nodelen = strlen(node);
	kb_informer_each(n->pods, on_node_one, o);
}

static void on_node_free(struct on_node *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->keys[i]);
	free(o->keys);
}

static kb_body *cached_pod(struct nlc *n, const char *key)
{
	char ns[256], name[256];
	if (!ctrl_split_key(key, ns, sizeof(ns), name, sizeof(name)))
		return NULL;
	return kb_informer_get(n->pods, ns, name);
}

/* When the pod must go (ms since the epoch), or -1: never (it tolerates
 * every NoExecute taint without a time limit). 0: now. */
static int64_t evict_at(const msgpack_object *node, const msgpack_object *pod)
{
	const msgpack_object *ts = kb_mp_get(node, "spec.taints");
	const msgpack_object *tols = kb_mp_get(pod, "spec.tolerations");
	bool tarr = tols && tols->type == MSGPACK_OBJECT_ARRAY;
	int64_t min_s = -1, since = -1;
	for (uint32_t i = 0;
	     ts && ts->type == MSGPACK_OBJECT_ARRAY && i < ts->via.array.size;
	     i++) {
		const msgpack_object *t = &ts->via.array.ptr[i];
		if (!kb_mp_streq(t, "effect", "NoExecute"))
			continue;
		bool tolerated = false;
		for (uint32_t k = 0; tarr && k < tols->via.array.size; k++) {
			const msgpack_object *tol = &tols->via.array.ptr[k];
			if (!nlc_tolerates(tol, t))
				continue;
			tolerated = true;
			int64_t s;
			if (kb_mp_int(tol, "tolerationSeconds", &s)) {
				if (s < 0)
					s = 0;
				if (min_s < 0 || s < min_s)
					min_s = s;
			}
		}
		if (!tolerated)
			return 0;
		int64_t added = ctrl_parse_time(t, "timeAdded");
		if (added > since)
			since = added;
	}
	if (min_s < 0)
		return -1;
	/* from when the taint came, or the pod if it came later */
	int64_t created = ctrl_parse_time(pod, "metadata.creationTimestamp");
	if (created > since)
		since = created;
	if (since < 0)
		since = ctrl_now_ms();
	return since + min_s * 1000;
}

static int evict(struct nlc *n, const msgpack_object *pod)
{
	char *ns = kb_mp_strdup(pod, "metadata.namespace");
	char *name = kb_mp_strdup(pod, "metadata.name");
	const char *uid;
	size_t ul;
	kb_body *opts = kb_mp_str(pod, "metadata.uid", &uid, &ul) ?
	    ctrl_delete_opts("Background", uid, ul) :
	    NULL;
	kb_msg *rep = NULL;
	int rc = kb_api_delete(n->c.ctx, &KB_GVR_PODS, ns, name, opts, &rep);
	if (rc == 0) {
		kb_info(n->c.ctx, "evicting pod", "pod=%s/%s", ns, name);
		kb_event_obj(n->c.events, "v1", "Pod", pod, false,
		    "TaintManagerEviction", "Marking for deletion Pod %s/%s", ns,
		    name);
	} else if (rc != KB_ENOTFOUND && rc != KB_ECONFLICT) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(n->c.ctx, "cannot evict pod",
		    "pod=%s/%s err=%s message=\"%s\"", ns, name,
		    kb_err_reason(rc), why);
	}
	kb_msg_free(rep);
	free(ns);
	free(name);
	/* gone or replaced meanwhile: nothing left to evict */
	return rc == KB_ENOTFOUND || rc == KB_ECONFLICT ? 0 : rc;
}

static bool has_no_execute(const msgpack_object *node)
{
	const msgpack_object *ts = kb_mp_get(node, "spec.taints");
	for (uint32_t i = 0;
	     ts && ts->type == MSGPACK_OBJECT_ARRAY && i < ts->via.array.size;
	     i++)
		if (kb_mp_streq(&ts->via.array.ptr[i], "effect", "NoExecute"))
			return true;
	return false;
}

int nlc_evict(struct nlc *n, const msgpack_object *node, int64_t *due_ms)
{
	if (!has_no_execute(node))
		return 0;
	char *name = kb_mp_strdup(node, "metadata.name");
	if (name == NULL)
		return 0;
	struct on_node o;
	pods_on(n, name, &o);
	int rc = 0;
	int64_t now = ctrl_now_ms();
	for (size_t i = 0; i < o.n; i++) {
		kb_body *pb = cached_pod(n, o.keys[i]);
		if (pb == NULL)
			continue;
		const msgpack_object *pod = kb_body_obj(pb);
		if (!ctrl_deleting(pod)) {
			int64_t at = evict_at(node, pod);
			if (at >= 0 && at <= now) {
				int e = evict(n, pod);
				if (e && rc == 0)
					rc = e;
			} else if (at > now &&
			    (*due_ms < 0 || at - now < *due_ms)) {
				*due_ms = at - now + 1;
			}
		}
		kb_body_unref(pb);
	}
	on_node_free(&o);
	free(name);
	return rc;
}

/* The pod with its Ready condition False (transition time now). */
static kb_body *not_ready(const msgpack_object *pod, const char *now)
{
	const msgpack_object *cs = kb_mp_get(pod, "status.conditions");
	if (cs == NULL || cs->type != MSGPACK_OBJECT_ARRAY)
		return NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, cs->via.array.size);
	for (uint32_t i = 0; i < cs->via.array.size; i++) {
		const msgpack_object *c = &cs->via.array.ptr[i];
		if (c->type != MSGPACK_OBJECT_MAP ||
		    !kb_mp_streq(c, "type", "Ready")) {
			msgpack_pack_object(&pk, *c);
			continue;
		}
		uint32_t keep = 0;
		for (uint32_t k = 0; k < c->via.map.size; k++)
			keep += !kb_mp_is(&c->via.map.ptr[k].key, "status") &&
			    !kb_mp_is(&c->via.map.ptr[k].key,
				"lastTransitionTime");
		msgpack_pack_map(&pk, keep + 2);
		for (uint32_t k = 0; k < c->via.map.size; k++) {
			const msgpack_object *key = &c->via.map.ptr[k].key;
			if (kb_mp_is(key, "status") ||
			    kb_mp_is(key, "lastTransitionTime"))
				continue;
			msgpack_pack_object(&pk, *key);
			msgpack_pack_object(&pk, c->via.map.ptr[k].val);
		}
		kb_mp_pack(&pk, "s:s, s:s", "status", "False",
		    "lastTransitionTime", now);
	}
	kb_body *b = ctrl_obj_set(pod, "status.conditions", sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

int nlc_pods_not_ready(struct nlc *n, const msgpack_object *node)
{
	char *name = kb_mp_strdup(node, "metadata.name");
	if (name == NULL)
		return 0;
	struct on_node o;
	pods_on(n, name, &o);
	char now[40];
	ctrl_format_time(ctrl_now_ms(), now, sizeof(now));
	int rc = 0;
	for (size_t i = 0; i < o.n; i++) {
		kb_body *pb = cached_pod(n, o.keys[i]);
		if (pb == NULL)
			continue;
		const msgpack_object *pod = kb_body_obj(pb);
		kb_body *b = ctrl_pod_ready(pod) && !ctrl_deleting(pod) ?
		    not_ready(pod, now) :
		    NULL;
		if (b) {
			char ns[256], pn[256];
			ctrl_split_key(o.keys[i], ns, sizeof(ns), pn,
			    sizeof(pn));
			int e = kb_api_update(n->c.ctx, &KB_GVR_PODS, ns, pn,
			    "status", b, NULL);
			if (e == 0)
				kb_debug(n->c.ctx, "pod marked not ready",
				    "pod=%s node=%s", o.keys[i], name);
			else if (e != KB_ENOTFOUND && rc == 0)
				rc = e;
		}
		kb_body_unref(pb);
	}
	on_node_free(&o);
	free(name);
	return rc;
}
