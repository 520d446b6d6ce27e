/* plugins/ctrl-nodeipam/sync.c — who holds which block, and one node's
 * reconcile: a node without spec.podCIDR gets the next free block. Blocks
 * already on nodes are recorded by the informer handlers, which see every
 * node of the first list before any worker runs: after a restart nothing
 * is handed out twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipam.h"

/* --- owners (under mu) ---------------------------------------------------------------- */

static struct ipam_owner **owner_of(struct ipam *p, const char *node)
{
	struct ipam_owner **pp = &p->owners;
	while (*pp && strcmp((*pp)->node, node))
		pp = &(*pp)->next;
	return pp;
}

bool ipam_held(struct ipam *p, const char *node, uint32_t *idx)
{
	struct ipam_owner *o = *owner_of(p, node);
	if (o)
		*idx = o->idx;
	return o != NULL;
}

static bool idx_owned_by_other(struct ipam *p, const char *node, uint32_t idx)
{
	for (struct ipam_owner *o = p->owners; o; o = o->next)
		if (o->idx == idx && strcmp(o->node, node))
			return true;
	return false;
}

bool ipam_hold(struct ipam *p, const char *node, uint32_t idx)
{
	struct ipam_owner **pp = owner_of(p, node);
	if (*pp && (*pp)->idx == idx)
		return true;
	bool clash = idx_owned_by_other(p, node, idx);
	if (*pp) {
		uint32_t old = (*pp)->idx;
		(*pp)->idx = idx;
		if (!idx_owned_by_other(p, node, old))
			ipam_set(&p->r, old, false);
	} else {
		struct ipam_owner *o = calloc(1, sizeof(*o));
		if (o == NULL || (o->node = strdup(node)) == NULL) {
			free(o);
			ipam_set(&p->r, idx, true);
			return !clash;
		}
		o->idx = idx;
		o->next = p->owners;
		p->owners = o;
	}
	ipam_set(&p->r, idx, true);
	return !clash;
}

void ipam_release(struct ipam *p, const char *node)
{
	struct ipam_owner **pp = owner_of(p, node);
	struct ipam_owner *o = *pp;
	if (o == NULL)
		return;
	*pp = o->next;
	if (!idx_owned_by_other(p, node, o->idx))
		ipam_set(&p->r, o->idx, false);
	free(o->node);
	free(o);
}

void ipam_owners_free(struct ipam *p)
{
	while (p->owners) {
		struct ipam_owner *o = p->owners;
		p->owners = o->next;
		free(o->node);
		free(o);
	}
}

/* --- informer bookkeeping -------------------------------------------------------------- */

void ipam_observe(struct ipam *p, const msgpack_object *node)
{
	char name[256];
	const char *n, *cidr;
	size_t nl, cl;
	uint32_t idx;
	if (!kb_mp_str(node, "metadata.name", &n, &nl) || nl >= sizeof(name))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)nl, n);
	if (!kb_mp_str(node, "spec.podCIDR", &cidr, &cl) || cl == 0)
		return; /* none yet: a worker's allocation may be on its way */
	pthread_mutex_lock(&p->mu);
	bool ours = ipam_block_of(&p->r, cidr, cl, &idx);
	bool ok = !ours || ipam_hold(p, name, idx);
	pthread_mutex_unlock(&p->mu);
	if (!ours)
		kb_debug(p->c.ctx, "podCIDR outside the cluster CIDR",
		    "node=%s podCIDR=%.*s", name, (int)cl, cidr);
	else if (!ok)
		kb_warn(p->c.ctx, "podCIDR also given to another node",
		    "node=%s podCIDR=%.*s", name, (int)cl, cidr);
}

void ipam_forget(struct ipam *p, const msgpack_object *node)
{
	char name[256];
	const char *n;
	size_t nl;
	if (!kb_mp_str(node, "metadata.name", &n, &nl) || nl >= sizeof(name))
		return;
	snprintf(name, sizeof(name), "%.*s", (int)nl, n);
	pthread_mutex_lock(&p->mu);
	ipam_release(p, name);
	pthread_mutex_unlock(&p->mu);
}

/* --- the reconcile ------------------------------------------------------------------------ */

/* What Kubernetes records when the range is used up (its CIDR
 * allocator's component is "cidrAllocator"). */
static void event_full(struct ipam *p, const msgpack_object *node)
{
	const char *n = "";
	size_t nl = 0;
	kb_mp_str(node, "metadata.name", &n, &nl);
	kb_event_obj(p->c.events, "v1", "Node", node, false, "CIDRNotAvailable",
	    "Node %.*s status is now: CIDRNotAvailable", (int)nl, n);
}

int ipam_sync(void *arg, const char *key)
{
	struct ipam *p = arg;
	kb_body *nb = kb_informer_get(p->nodes, NULL, key);
	if (nb == NULL) {
		pthread_mutex_lock(&p->mu);
		ipam_release(p, key);
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	const msgpack_object *node = kb_body_obj(nb);
	const char *cidr;
	size_t cl;
	if (ctrl_deleting(node) ||
	    (kb_mp_str(node, "spec.podCIDR", &cidr, &cl) && cl > 0)) {
		kb_body_unref(nb);
		return 0;
	}
	uint32_t idx;
	pthread_mutex_lock(&p->mu);
	/* Held without a podCIDR in the cache: our update went through and
	 * its event is on the way. */
	bool pending = ipam_held(p, key, &idx);
	bool got = !pending && ipam_take_free(&p->r, &idx);
	if (got)
		ipam_hold(p, key, idx);
	pthread_mutex_unlock(&p->mu);
	if (pending) {
		kb_body_unref(nb);
		return 0;
	}
	if (!got) {
		kb_warn(p->c.ctx, "no pod CIDR left for node",
		    "node=%s cluster_cidr=%s node_cidr_mask_size=%lld", key,
		    p->cfg.cluster_cidr, (long long)p->cfg.mask);
		event_full(p, node);
		kb_body_unref(nb);
		ctrl_requeue_after(&p->c, key, p->cfg.full_retry_ms);
		return 0;
	}
	char block[32];
	ipam_block_cidr(&p->r, idx, block, sizeof(block));
	kb_body *b1 = ctrl_obj_setf(node, "spec.podCIDR", "s", block);
	kb_body *b2 = b1 ?
	    ctrl_obj_setf(kb_body_obj(b1), "spec.podCIDRs", "[s]", block) :
	    NULL;
	if (b1)
		kb_body_unref(b1);
	int rc = KB_ENOMEM;
	kb_msg *rep = NULL;
	if (b2)
		rc = kb_api_update(p->c.ctx, &KB_GVR_NODES, NULL, key, NULL, b2,
		    &rep);
	if (rc) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		if (rc != KB_ECONFLICT && rc != KB_ENOTFOUND)
			kb_warn(p->c.ctx, "cannot set the node's podCIDR",
			    "node=%s podCIDR=%s err=%s message=\"%s\"", key,
			    block, kb_err_reason(rc), why);
		pthread_mutex_lock(&p->mu);
		ipam_release(p, key);
		pthread_mutex_unlock(&p->mu);
	} else {
		kb_info(p->c.ctx, "node podCIDR set", "node=%s podCIDR=%s", key,
		    block);
	}
	kb_msg_free(rep);
	kb_body_unref(nb);
	return rc == KB_ENOTFOUND ? 0 : rc;
}
