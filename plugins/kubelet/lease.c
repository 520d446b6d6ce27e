/* plugins/kubelet/lease.c — the node's heartbeat: a Lease named after the
 * node in kube-node-lease, owned by the Node, renewed every lease_interval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

#define LEASE_NS "kube-node-lease"

static int lease_create(struct kubelet *kl, const char *now)
{
	char *uid = NULL;
	pthread_mutex_lock(&kl->mu);
	if (kl->node_uid)
		uid = strdup(kl->node_uid);
	pthread_mutex_unlock(&kl->mu);
	kb_body *b;
	int secs = (int)(kl->cfg.lease_duration_ms / 1000);
	if (uid)
		b = kb_mp_body(
		    "{s:s, s:s, s:{s:s, s:s, s:[{s:s, s:s, s:s, s:s}]}, s:{s:s, s:i, s:s, s:s}}",
		    "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
		    "metadata", "name", kl->node, "namespace", LEASE_NS,
		    "ownerReferences", "apiVersion", "v1", "kind", "Node",
		    "name", kl->node, "uid", uid, "spec", "holderIdentity",
		    kl->node, "leaseDurationSeconds", secs, "renewTime", now,
		    "acquireTime", now);
	else
		b = kb_mp_body("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s}}",
		    "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
		    "metadata", "name", kl->node, "namespace", LEASE_NS, "spec",
		    "holderIdentity", kl->node, "leaseDurationSeconds", secs,
		    "renewTime", now, "acquireTime", now);
	free(uid);
	if (b == NULL)
		return KB_ENOMEM;
	return kb_api_create(kl->ctx, &KB_GVR_LEASES, LEASE_NS, b, NULL);
}

int kl_lease_renew(struct kubelet *kl)
{
	char now[40];
	kl_rfc3339_micro(kl_wall_ms(), now, sizeof(now));
	kb_body *b = kb_mp_body("{s:{s:s, s:i, s:s}}", "spec", "holderIdentity",
	    kl->node, "leaseDurationSeconds",
	    (int)(kl->cfg.lease_duration_ms / 1000), "renewTime", now);
	if (b == NULL)
		return KB_ENOMEM;
	int rc = kb_api_patch(kl->ctx, &KB_GVR_LEASES, LEASE_NS, kl->node, NULL,
	    "merge", b, NULL);
	if (rc == KB_ENOTFOUND)
		rc = lease_create(kl, now);
	if (rc)
		kb_warn(kl->ctx, "cannot renew the node lease",
		    "node=%s err=\"%s\"", kl->node, kb_strerror(rc));
	return rc;
}
