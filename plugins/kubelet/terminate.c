/* plugins/kubelet/terminate.c — graceful deletion: once the API server has
 * set deletionTimestamp, stop every container (SIGTERM, SIGKILL at the end
 * of the grace period), remove the sandbox, then delete the object for good
 * with gracePeriodSeconds 0 and the pod's uid as precondition. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

/* The final delete answered (kl_pod_call): gone, or another pod of the
 * name by now, is done; anything else is sent again after a back-off. */
static int deleted(struct kubelet *kl, struct kl_pod *p, int rc, void *sent)
{
	(void)kl;
	(void)sent;
	if (p == NULL || rc == 0 || rc == KB_ENOTFOUND || rc == KB_ECONFLICT)
		return KL_DONE_CALL;
	p->deleted = false;
	return KL_RETRY;
}

int kl_terminate(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	pthread_mutex_lock(&kl->mu);
	bool sent = p->deleted;
	pthread_mutex_unlock(&kl->mu);
	if (sent)
		return 0;
	if (!p->terminating) {
		int64_t grace = 30;
		if (!kb_mp_int(pod, "metadata.deletionGracePeriodSeconds",
			&grace))
			kb_mp_int(pod, "spec.terminationGracePeriodSeconds",
			    &grace);
		if (grace < 0)
			grace = 0;
		p->terminating = true;
		p->kill_at_ms = kl_mono_ms() + grace * 1000;
		kb_info(kl->ctx, "stopping pod", "pod=%s grace_s=%lld", p->key,
		    (long long)grace);
		for (size_t i = 0; i < p->nctrs; i++)
			if (p->ctrs[i].id[0])
				kl_event(kl, p, &p->ctrs[i], false, "Killing",
				    "Stopping container %s", p->ctrs[i].name);
	}
	int64_t left = p->kill_at_ms - kl_mono_ms();
	kl_pod_kill(kl, p, left > 0 ? left : 0);
	kb_body *opts = kb_mp_body("{s:i, s:{s:s}}", "gracePeriodSeconds", 0,
	    "preconditions", "uid", p->uid);
	if (opts == NULL)
		return KB_ENOMEM;
	pthread_mutex_lock(&kl->mu);
	p->deleted = true;
	pthread_mutex_unlock(&kl->mu);
	int rc = kl_pod_call(kl, p, "delete", opts, deleted, NULL);
	if (rc) {
		pthread_mutex_lock(&kl->mu);
		p->deleted = false;
		pthread_mutex_unlock(&kl->mu);
	}
	return rc;
}
