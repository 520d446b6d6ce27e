/* plugins/kubelet/pods.c — the pods this kubelet runs: one record per pod
 * key, made from its spec on first sync, dropped when the API object is
 * gone and its containers and sandbox are removed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

static struct kl_pod *find(struct kubelet *kl, const char *key)
{
	struct kl_pod *p;
	if (!kl->pod_index_bad)
		p = kb_strmap_get(&kl->pod_index, key);
	else
		for (p = kl->pods; p && strcmp(p->key, key); p = p->next)
			;
	return p;
}

struct kl_pod *kl_pod_find(struct kubelet *kl, const char *key)
{
	pthread_mutex_lock(&kl->mu);
	struct kl_pod *p = find(kl, key);
	pthread_mutex_unlock(&kl->mu);
	return p;
}

struct kl_pod *kl_pod_find_locked(struct kubelet *kl, const char *key,
    const char *uid)
{
	struct kl_pod *p = find(kl, key);
	/* the index holds the first of a key; another (adopted twice) is
	 * further down the list */
	for (; p; p = p->next)
		if (!strcmp(p->key, key) && !strcmp(p->uid, uid))
			return p;
	return NULL;
}

/* --- calls about a pod, not waited for ------------------------------------------- */

struct pod_call {
	struct kubelet *kl;
	kl_call_done done;
	void *sent;
	char *key, *uid;
};

static void pod_call_replied(void *arg, int rc, const kb_msg *rep)
{
	struct pod_call *c = arg;
	struct kubelet *kl = c->kl;
	if (rc && rc != KB_ENOTFOUND && rc != KB_ECONFLICT) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(kl->ctx, "pod sync failed", "pod=%s err=\"%s\" message=\"%s\"",
		    c->key, kb_strerror(rc), why);
	}
	pthread_mutex_lock(&kl->mu);
	int again = c->done(kl, kl_pod_find_locked(kl, c->key, c->uid), rc, c->sent);
	/* the queue outlives the calls: kubelet_halt frees it after them */
	if (again == KL_AGAIN)
		kb_workqueue_add(kl->queue, c->key);
	else if (again == KL_RETRY)
		kb_workqueue_add_rate_limited(kl->queue, c->key);
	pthread_mutex_unlock(&kl->mu);
	free(c->key);
	free(c->uid);
	free(c);
}

int kl_pod_call(struct kubelet *kl, const struct kl_pod *p, const char *op,
    kb_body *body, kl_call_done done, void *sent)
{
	struct pod_call *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->key = strdup(p->key)) == NULL ||
	    (c->uid = strdup(p->uid)) == NULL) {
		if (c)
			free(c->key);
		free(c);
		kb_body_unref(body);
		return KB_ENOMEM;
	}
	c->kl = kl;
	c->done = done;
	c->sent = sent;
	int rc = !strcmp(op, "delete")
	    ? kb_api_batch_delete(kl->calls, &KB_GVR_PODS, p->ns, p->name, body,
		  pod_call_replied, c)
	    : kb_api_batch_patch(kl->calls, &KB_GVR_PODS, p->ns, p->name, "status",
		  "merge", body, pod_call_replied, c);
	if (rc) {
		free(c->key);
		free(c->uid);
		free(c);
	}
	return rc;
}

static bool ctrs_from(struct kl_ctr *v, size_t *n, const msgpack_object *list,
    bool init)
{
	for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY &&
	     i < list->via.array.size;
	     i++) {
		struct kl_ctr *c = &v[(*n)++];
		c->init = init;
		c->name = kb_mp_strdup(&list->via.array.ptr[i], "name");
		c->image = kb_mp_strdup(&list->via.array.ptr[i], "image");
		if (c->name == NULL || c->image == NULL)
			return false;
	}
	return true;
}

static size_t count(const msgpack_object *list)
{
	return list && list->type == MSGPACK_OBJECT_ARRAY ?
	    list->via.array.size :
	    0;
}

static void pod_free(struct kl_pod *p)
{
	for (size_t i = 0; i < p->nctrs; i++) {
		free(p->ctrs[i].name);
		free(p->ctrs[i].image);
	}
	free(p->ctrs);
	free(p->found);
	free(p->key);
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->phase);
	free(p->last_status);
	free(p);
}

static void link_pod(struct kubelet *kl, struct kl_pod *p)
{
	pthread_mutex_lock(&kl->mu);
	p->next = kl->pods;
	kl->pods = p;
	if (kb_strmap_put(&kl->pod_index, p->key, p, NULL) != 0)
		kl->pod_index_bad = true;
	pthread_mutex_unlock(&kl->mu);
}

int kl_pod_set_spec(struct kl_pod *p, const msgpack_object *pod)
{
	const msgpack_object *inits = kb_mp_get(pod, "spec.initContainers");
	const msgpack_object *ctrs = kb_mp_get(pod, "spec.containers");
	p->ninit = count(inits);
	p->nctrs = 0;
	/* One record per container (1.6 KiB each), one at least. */
	size_t n = p->ninit + count(ctrs);
	p->ctrs = calloc(n ? n : 1, sizeof(*p->ctrs));
	if (p->ctrs == NULL || !ctrs_from(p->ctrs, &p->nctrs, inits, true) ||
	    !ctrs_from(p->ctrs, &p->nctrs, ctrs, false))
		return KB_ENOMEM;
	return 0;
}

struct kl_pod *kl_pod_new(struct kubelet *kl, const char *key,
    const msgpack_object *pod)
{
	struct kl_pod *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->key = strdup(key);
	p->ns = kb_mp_strdup(pod, "metadata.namespace");
	p->name = kb_mp_strdup(pod, "metadata.name");
	p->uid = kb_mp_strdup(pod, "metadata.uid");
	if (p->key == NULL || p->ns == NULL || p->name == NULL ||
	    p->uid == NULL || kl_pod_set_spec(p, pod) != 0) {
		pod_free(p);
		return NULL;
	}
	link_pod(kl, p);
	return p;
}

struct kl_pod *kl_pod_stub(struct kubelet *kl, const char *ns,
    const char *name, const char *uid)
{
	struct kl_pod *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->key = kl_strf("%s/%s", ns, name);
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->uid = strdup(uid);
	p->ctrs = calloc(1, sizeof(*p->ctrs));
	p->adopted = true;
	if (p->key == NULL || p->ns == NULL || p->name == NULL ||
	    p->uid == NULL || p->ctrs == NULL) {
		pod_free(p);
		return NULL;
	}
	link_pod(kl, p);
	return p;
}

char *kl_log_path(struct kubelet *kl, const struct kl_pod *p, const char *ctr,
    unsigned attempt)
{
	char n[KL_NUM_MAX];
	kl_utoa(attempt, n);
	return kl_cat(kl->root, "/logs/", p->ns, "_", p->name, "_", p->uid, "/",
	    ctr ? ctr : "", "/", n, ".log", (char *)NULL);
}

void kl_pod_kill(struct kubelet *kl, struct kl_pod *p, int64_t grace_ms)
{
	/* Containers adopted but never claimed by a spec (the pod went
	 * while the kubelet was down). */
	for (size_t i = 0; i < p->nfound; i++) {
		if (!p->found[i].id[0])
			continue;
		kl->rt->container_stop(kl->rts, p->found[i].id, SIGKILL, 0);
		kl->rt->container_remove(kl->rts, p->found[i].id);
		p->found[i].id[0] = '\0';
	}
	for (size_t i = 0; i < p->nctrs; i++) {
		struct kl_ctr *c = &p->ctrs[i];
		if (!c->id[0])
			continue;
		kl->rt->container_stop(kl->rts, c->id,
		    grace_ms > 0 ? SIGTERM : SIGKILL, grace_ms);
		c->cur.size = sizeof(c->cur);
		c->have_cur =
		    kl->rt->container_status(kl->rts, c->id, &c->cur) == 0;
		kl->rt->container_remove(kl->rts, c->id);
		pthread_mutex_lock(&kl->mu);
		c->id[0] = '\0';
		pthread_mutex_unlock(&kl->mu);
	}
	if (p->sandbox[0]) {
		kl->rt->sandbox_remove(kl->rts, p->sandbox);
		p->sandbox[0] = '\0';
	}
	/* The netns, its CNI state (IP reservation, veth), tmpfs volumes and
	 * the pod dir: after the sandbox, as the runtime header says. */
	if (!p->net_down) {
		kl_pod_net_teardown(kl, p->uid);
		p->net_down = true;
	}
}

static void logs_remove(struct kubelet *kl, const struct kl_pod *p)
{
	char *dir = kl_cat(kl->root, "/logs/", p->ns, "_", p->name, "_",
	    p->uid, (char *)NULL);
	if (dir) {
		kl_log_sync(kl, dir, false);
		kl_rmrf(dir);
		free(dir);
	}
}

/* Forget the pod: its containers must be gone already. Its logs go too. */
void kl_pod_drop(struct kubelet *kl, struct kl_pod *p)
{
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod **pp = &kl->pods; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (kb_strmap_get(&kl->pod_index, p->key) == p) {
		kb_strmap_del(&kl->pod_index, p->key);
		/* Another of the same key (adopted twice): it is found now. */
		struct kl_pod *q = kl->pods;
		while (q && strcmp(q->key, p->key))
			q = q->next;
		if (q && kb_strmap_put(&kl->pod_index, q->key, q, NULL) != 0)
			kl->pod_index_bad = true;
	}
	pthread_mutex_unlock(&kl->mu);
	logs_remove(kl, p);
	pod_free(p);
}

void kl_pods_free(struct kubelet *kl)
{
	while (kl->pods) {
		struct kl_pod *p = kl->pods;
		kl->pods = p->next;
		/* Deleted, lingering for a last `logs -f` read (sync.c): no
		 * later kubelet would know these logs. */
		if (p->deleted)
			logs_remove(kl, p);
		pod_free(p);
	}
	kb_strmap_clear(&kl->pod_index, NULL);
}
