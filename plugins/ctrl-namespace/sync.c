/* plugins/ctrl-namespace/sync.c — finishing a Terminating namespace, as
 * Kubernetes' namespaced_resources_deleter: delete every namespaced
 * object in it, look again until nothing is left (pods on a node go only
 * once their kubelet has stopped them), then take the `kubernetes`
 * finalizer off spec.finalizers; the API server then deletes the
 * namespace (an update leaving a deleting object without finalizers is
 * its deletion). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsc.h"

/* Every namespaced resource the API server serves (client.h). */
static const struct kb_gvr *const namespaced[] = {
	&KB_GVR_DEPLOYMENTS,
	&KB_GVR_REPLICASETS,
	&KB_GVR_PODS,
	&KB_GVR_SERVICES,
	&KB_GVR_ENDPOINTS,
	&KB_GVR_ENDPOINTSLICES,
	&KB_GVR_CONFIGMAPS,
	&KB_GVR_SECRETS,
	&KB_GVR_SERVICEACCOUNTS,
	&KB_GVR_EVENTS,
	&KB_GVR_LEASES,
};
#define NNAMESPACED (sizeof(namespaced) / sizeof(namespaced[0]))

static int items(kb_msg *list)
{
	const msgpack_object *it = kb_mp_key(kb_msg_body(list), "items");
	return it && it->type == MSGPACK_OBJECT_ARRAY ?
	    (int)it->via.array.size :
	    0;
}

/* Delete what is left of one resource in ns; *left: how many remain. */
static int empty_one(struct nsc *n, const struct kb_gvr *r, const char *ns,
    int *left)
{
	kb_msg *rep = NULL;
	int rc = kb_api_list(n->c.ctx, r, ns, NULL, NULL, &rep);
	if (rc) {
		kb_msg_free(rep);
		/* a resource this API server does not serve holds nothing */
		return rc == KB_ENOTFOUND ? 0 : rc;
	}
	int have = items(rep);
	kb_msg_free(rep);
	if (have == 0)
		return 0;
	/* DELETE on the collection: one call for the lot */
	kb_body *opts = kb_mp_body("{s:s}", "propagationPolicy", "Background");
	rc = kb_api_delete(n->c.ctx, r, ns, NULL, opts, NULL);
	if (rc && rc != KB_ENOTFOUND)
		return rc;
	rep = NULL;
	rc = kb_api_list(n->c.ctx, r, ns, NULL, NULL, &rep);
	if (rc == 0)
		*left += items(rep);
	kb_msg_free(rep);
	return rc == KB_ENOTFOUND ? 0 : rc;
}

static int finalize(struct nsc *n, const msgpack_object *nsobj,
    const char *name)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ctrl_pack_strs_without(&pk, kb_mp_get(nsobj, "spec.finalizers"),
	    "kubernetes");
	/* guarded: a stale cache must not finalize (or recreate) a
	 * namespace that has already gone */
	int rc = ctrl_patch_guarded(n->c.ctx, &KB_GVR_NAMESPACES, nsobj,
	    "/spec/finalizers", sb.data, sb.size, NULL);
	msgpack_sbuffer_destroy(&sb);
	kb_info(n->c.ctx, "namespace finalized", "namespace=%s rc=%s", name,
	    rc ? kb_err_reason(rc) : "ok");
	return rc == KB_ENOTFOUND ? 0 : rc;
}

int nsc_sync(void *arg, const char *key)
{
	struct nsc *n = arg;
	kb_body *b = kb_informer_get(n->nss, NULL, key);
	if (b == NULL)
		return 0;
	const msgpack_object *nsobj = kb_body_obj(b);
	int rc = 0;
	if (!ctrl_deleting(nsobj) ||
	    !ctrl_has_finalizer(nsobj, "spec.finalizers", "kubernetes")) {
		kb_body_unref(b);
		return 0;
	}
	int left = 0;
	for (size_t i = 0; rc == 0 && i < NNAMESPACED; i++)
		rc = empty_one(n, namespaced[i], key, &left);
	if (rc == 0 && left > 0) {
		kb_debug(n->c.ctx, "namespace not empty yet",
		    "namespace=%s left=%d", key, left);
		ctrl_requeue_after(&n->c, key, n->cfg.recheck_ms);
	} else if (rc == 0) {
		rc = finalize(n, nsobj, key);
	}
	kb_body_unref(b);
	return rc;
}
