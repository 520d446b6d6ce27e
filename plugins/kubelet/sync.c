/* plugins/kubelet/sync.c — level-triggered pod sync: compare what the API
 * wants (the informer's copy) with what the runtime has, take one step
 * towards it, write the status. Called for one key at a time per key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

static bool terminal(const char *phase)
{
	return phase &&
	    (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
}

static int sandbox_ensure(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	if (p->sandbox[0])
		return 0;
	char *dir;
	if (asprintf(&dir, "%s/pods/%s", kl->root, p->uid) < 0)
		return KB_ENOMEM;
	kl_mkdirs(dir);
	bool host_net = false;
	kb_mp_bool(pod, "spec.hostNetwork", &host_net);
	char *hostname = kb_mp_strdup(pod, "spec.hostname");
	struct kb_rt_sandbox_spec spec = {
		.size = sizeof(spec),
		.uid = p->uid,
		.ns = p->ns,
		.name = p->name,
		.pod = pod,
		.hostname = hostname ? hostname : p->name,
		.host_network = host_net,
		.pod_dir = dir,
	};
	struct kb_rt_sandbox sb = { .size = sizeof(sb) };
	int rc = kl->rt->sandbox_create(kl->rts, &spec, &sb);
	free(hostname);
	free(dir);
	if (rc) {
		kb_warn(kl->ctx, "cannot create the pod sandbox",
		    "pod=%s err=\"%s\"", p->key, kb_strerror(rc));
		return rc;
	}
	memcpy(p->sandbox, sb.id, sizeof(p->sandbox));
	snprintf(p->ip, sizeof(p->ip), "%s",
	    host_net || !sb.ip[0] ? kl->address : sb.ip);
	if (!p->start_time[0])
		kl_rfc3339(kl_wall_ms(), p->start_time, sizeof(p->start_time));
	return 0;
}

/* Init containers in order, each to success; then every container. */
static int run_pod(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	const char *policy = "Always";
	const char *s;
	size_t len;
	char pol[16];
	if (kb_mp_str(pod, "spec.restartPolicy", &s, &len) &&
	    len < sizeof(pol)) {
		snprintf(pol, sizeof(pol), "%.*s", (int)len, s);
		policy = pol;
	}
	if (terminal(p->phase))
		return 0; /* Succeeded or Failed: nothing runs again */
	int rc = sandbox_ensure(kl, p, pod);
	if (rc)
		return rc;
	const msgpack_object *inits = kb_mp_get(pod, "spec.initContainers");
	const msgpack_object *ctrs = kb_mp_get(pod, "spec.containers");
	/* Init containers restart on failure unless the policy is Never. */
	const char *init_policy = !strcmp(policy, "Never") ? "Never" :
							     "OnFailure";
	for (size_t i = 0; i < p->ninit; i++) {
		struct kl_ctr *c = &p->ctrs[i];
		if (c->done)
			continue;
		int st = kl_container_step(kl, p, pod, c,
		    &inits->via.array.ptr[i], init_policy);
		if (st != KL_DONE || !c->done)
			return 0;
		if (c->cur.exit_code != 0)
			return 0; /* failed under Never: the pod fails */
	}
	for (size_t i = p->ninit; i < p->nctrs; i++)
		kl_container_step(kl, p, pod, &p->ctrs[i],
		    &ctrs->via.array.ptr[i - p->ninit], policy);
	return 0;
}

int kl_sync(struct kubelet *kl, const char *key)
{
	char ns[256], name[256];
	const char *slash = strchr(key, '/');
	if (slash == NULL || slash - key >= (long)sizeof(ns) ||
	    strlen(slash + 1) >= sizeof(name))
		return 0;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	snprintf(name, sizeof(name), "%s", slash + 1);

	kb_body *b = kb_informer_get(kl->pods_inf, ns, name);
	const msgpack_object *pod = b ? kb_body_obj(b) : NULL;
	struct kl_pod *p = kl_pod_find(kl, key);
	if (p && (pod == NULL || !kb_mp_streq(pod, "metadata.uid", p->uid))) {
		/* Gone from the API (or replaced by a pod of the same name). */
		kl_pod_kill(kl, p, 0);
		kl_pod_drop(kl, p);
		p = NULL;
	}
	if (pod == NULL || !kb_mp_streq(pod, "spec.nodeName", kl->node)) {
		if (b)
			kb_body_unref(b);
		return 0;
	}
	int rc = 0;
	bool deleting = kb_mp_get(pod, "metadata.deletionTimestamp") != NULL;
	if (p == NULL) {
		const char *s;
		size_t len;
		/* A finished pod this kubelet does not know: nothing to run. */
		bool done = kb_mp_str(pod, "status.phase", &s, &len) &&
		    ((len == 9 && !memcmp(s, "Succeeded", 9)) ||
			(len == 6 && !memcmp(s, "Failed", 6)));
		if (done && !deleting)
			goto out;
		if ((p = kl_pod_new(kl, key, pod)) == NULL) {
			rc = KB_ENOMEM;
			goto out;
		}
	}
	if (deleting) {
		rc = kl_terminate(kl, p, pod);
		goto out;
	}
	rc = run_pod(kl, p, pod);
	int wrc = kl_status_write(kl, p, pod);
	if (rc == 0)
		rc = wrc;
out:
	kb_body_unref(b);
	return rc;
}

static void add_key(void *arg, const msgpack_object *obj)
{
	struct kubelet *kl = arg;
	char key[512];
	if (kb_object_key(obj, key, sizeof(key)))
		kb_workqueue_add(kl->queue, key);
}

void kl_enqueue_all(struct kubelet *kl)
{
	if (kl->pods_inf == NULL || kl->queue == NULL)
		return;
	kb_informer_each(kl->pods_inf, add_key, kl);
	/* Pods the informer no longer has, in case their delete was missed. */
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p; p = p->next)
		kb_workqueue_add(kl->queue, p->key);
	pthread_mutex_unlock(&kl->mu);
}
