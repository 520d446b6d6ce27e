/* plugins/kubelet/container.c — one container, one step towards its spec:
 * start it when it has no runtime container, read its state when it has,
 * and when it has exited apply the restart policy with CrashLoopBackOff
 * (the first restart at once, then backoff_initial doubling up to
 * backoff_max; reset after a run of twice backoff_max, as Kubernetes). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

static void set_wait(struct kl_ctr *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_wait(struct kl_ctr *c, const char *reason, const char *fmt, ...)
{
	va_list ap;
	snprintf(c->wait_reason, sizeof(c->wait_reason), "%s", reason);
	va_start(ap, fmt);
	vsnprintf(c->wait_message, sizeof(c->wait_message), fmt, ap);
	va_end(ap);
}

static void clear_wait(struct kl_ctr *c)
{
	c->wait_reason[0] = c->wait_message[0] = '\0';
}

/* imagePullPolicy Never (absent, the API server's default is Always or
 * IfNotPresent: both may pull). */
static bool pull_never(const msgpack_object *spec)
{
	const char *s;
	size_t n;
	if (kb_mp_str(spec, "imagePullPolicy", &s, &n) && n)
		return n == 5 && !memcmp(s, "Never", 5);
	return false;
}

/* The image is not in the node's store and its policy lets the kubelet
 * pull. Kubus has no registry client: the "pull" is another look in the
 * store (where `kubus image import` puts images), with Kubernetes' reasons
 * and events: ErrImagePull when it is tried, ImagePullBackOff between
 * tries (backoff_initial doubling up to backoff_max, as crashes). */
static int pull_failed(struct kubelet *kl, struct kl_pod *p, struct kl_ctr *c,
    int rc)
{
	int64_t now = kl_mono_ms();
	if (c->pull_retry_at_ms && now < c->pull_retry_at_ms) {
		if (strcmp(c->wait_reason, "ImagePullBackOff") != 0) {
			kl_event(kl, p, c, false, "BackOff",
			    "Back-off pulling image \"%s\"", c->image);
			kl_event(kl, p, c, true, "Failed",
			    "Error: ImagePullBackOff");
		}
		set_wait(c, "ImagePullBackOff", "Back-off pulling image \"%s\"",
		    c->image);
		kb_workqueue_add_after(kl->queue, p->key,
		    c->pull_retry_at_ms - now);
		return KL_WAITING;
	}
	const char *why = rc ?
	    kb_strerror(rc) :
	    "not in the node's image store, and this kubelet pulls from no "
	    "registry (add it with `kubus image import`)";
	kl_event(kl, p, c, false, "Pulling", "Pulling image \"%s\"", c->image);
	set_wait(c, "ErrImagePull", "failed to pull image \"%s\": %s", c->image,
	    why);
	kl_event(kl, p, c, true, "Failed", "Failed to pull image \"%s\": %s",
	    c->image, why);
	kl_event(kl, p, c, true, "Failed", "Error: ErrImagePull");
	c->pull_backoff_ms = c->pull_backoff_ms ? c->pull_backoff_ms * 2 :
						  kl->cfg.backoff_initial_ms;
	if (c->pull_backoff_ms > kl->cfg.backoff_max_ms)
		c->pull_backoff_ms = kl->cfg.backoff_max_ms;
	c->pull_retry_at_ms = now + c->pull_backoff_ms;
	kb_workqueue_add_after(kl->queue, p->key, c->pull_backoff_ms);
	return KL_WAITING;
}

static int start(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *spec, struct kl_ctr *c)
{
	bool present = false;
	int rc = kl->rt->image_present(kl->rts, c->image, &present);
	if ((rc || !present) && !pull_never(spec))
		return pull_failed(kl, p, c, rc);
	if (rc || !present) {
		set_wait(c, "ErrImageNeverPull",
		    "Container image \"%s\" is not present with pull policy of Never",
		    c->image);
		kl_event(kl, p, c, true, "ErrImageNeverPull", "%s",
		    c->wait_message);
		kl_event(kl, p, c, true, "Failed", "Error: ErrImageNeverPull");
		return KL_WAITING;
	}
	c->pull_backoff_ms = c->pull_retry_at_ms = 0;
	kl_event(kl, p, c, false, "Pulled",
	    "Container image \"%s\" already present on machine", c->image);
	char *path = kl_log_path(kl, p, c->name, c->restarts);
	char *dir = path ? strdup(path) : NULL;
	if (dir == NULL) {
		free(path);
		return KL_WAITING;
	}
	/* runc opens the file before the container runs; runtime-fake makes
	 * the directory when it first writes a line (two fewer inodes made
	 * up front, and none for a container that never starts). */
	*strrchr(dir, '/') = '\0';
	if (!kl_hollow(kl))
		kl_mkdirs(dir);
	free(dir);
	/* env, volume mounts, /etc/hosts, resolv.conf (prepare.c) */
	struct kl_ctr_config cc;
	if (kl_ctr_config(kl, p, spec, c, &cc) != 0) {
		free(path);
		kl_event(kl, p, c, true, "Failed", "Error: %s",
		    c->wait_reason);
		return KL_WAITING;
	}
	struct kb_rt_container_spec cs = {
		.size = sizeof(cs),
		.sandbox_id = p->sandbox,
		.pod_uid = p->uid,
		.name = c->name,
		.image = c->image,
		.init = c->init,
		.attempt = c->restarts,
		.container = cc.container ? cc.container : spec,
		.env = (const char *const *)cc.env,
		.mounts = cc.mounts,
		.nmounts = cc.nmounts,
		.log_path = path,
	};
	char id[KB_RT_ID_MAX];
	rc = kl->rt->container_create(kl->rts, &cs, id, sizeof(id));
	kl_ctr_config_free(&cc);
	free(path);
	if (rc) {
		set_wait(c, "CreateContainerError",
		    "cannot create container %s: %s", c->name, kb_strerror(rc));
		kl_event(kl, p, c, true, "Failed", "Error: %s",
		    c->wait_message);
		return KL_WAITING;
	}
	kl_event(kl, p, c, false, "Created", "Created container %s", c->name);
	pthread_mutex_lock(&kl->mu);
	memcpy(c->id, id, sizeof(c->id));
	pthread_mutex_unlock(&kl->mu);
	if ((rc = kl->rt->container_start(kl->rts, c->id)) != 0) {
		set_wait(c, "RunContainerError",
		    "cannot start container %s: %s", c->name, kb_strerror(rc));
		kl_event(kl, p, c, true, "Failed", "Error: %s",
		    c->wait_message);
		return KL_WAITING;
	}
	kl_event(kl, p, c, false, "Started", "Started container %s", c->name);
	kl_probe_sync(kl, p, c, spec);
	clear_wait(c);
	c->cur.size = sizeof(c->cur);
	c->have_cur = kl->rt->container_status(kl->rts, c->id, &c->cur) == 0;
	return KL_RUNNING;
}

static bool wants_restart(const char *policy, int exit_code)
{
	if (!strcmp(policy, "Always"))
		return true;
	if (!strcmp(policy, "OnFailure"))
		return exit_code != 0;
	return false;
}

/* The exited container's turn to run again, or not yet. */
static bool backoff_over(struct kubelet *kl, struct kl_pod *p, struct kl_ctr *c)
{
	int64_t now = kl_mono_ms();
	if (c->retry_at_ms == 0) {
		int64_t ran = c->cur.finished_ms - c->cur.started_ms;
		if (ran > 2 * kl->cfg.backoff_max_ms)
			c->backoff_ms = 0;
		if (c->restarts == 0 && c->backoff_ms == 0) {
			c->retry_at_ms =
			    now; /* the first restart is immediate */
		} else {
			c->backoff_ms = c->backoff_ms ?
			    c->backoff_ms * 2 :
			    kl->cfg.backoff_initial_ms;
			if (c->backoff_ms > kl->cfg.backoff_max_ms)
				c->backoff_ms = kl->cfg.backoff_max_ms;
			c->retry_at_ms = now + c->backoff_ms;
		}
	}
	if (now >= c->retry_at_ms)
		return true;
	bool first = strcmp(c->wait_reason, "CrashLoopBackOff") != 0;
	set_wait(c, "CrashLoopBackOff",
	    "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
	    (long long)(c->backoff_ms + 999) / 1000, c->name, p->name, p->ns,
	    p->uid);
	/* One BackOff per back-off period, as the kubelet: aggregated into
	 * a count by events.c. */
	if (first)
		kl_event(kl, p, c, true, "BackOff",
		    "Back-off restarting failed container %s in pod %s_%s(%s)",
		    c->name, p->name, p->ns, p->uid);
	kb_workqueue_add_after(kl->queue, p->key, c->retry_at_ms - now);
	return false;
}

/* Liveness (or startup) failed: stop the container as Kubernetes does,
 * with the probe's grace period, else the pod's; the restart policy then
 * treats it as any exit. True when it was stopped. */
static bool liveness_kill(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, struct kl_ctr *c)
{
	char which[32];
	int64_t grace_ms = -1;
	if (!kl_probe_kill(kl, p, c, which, sizeof(which), &grace_ms))
		return false;
	if (grace_ms < 0) {
		int64_t g = 30;
		if (pod)
			kb_mp_int(pod, "spec.terminationGracePeriodSeconds",
			    &g);
		grace_ms = g > 0 ? g * 1000 : 0;
	}
	kl_event(kl, p, c, false, "Killing",
	    "Container %s failed %s probe, will be restarted", c->name, which);
	kl->rt->container_stop(kl->rts, c->id, grace_ms > 0 ? SIGTERM : SIGKILL,
	    grace_ms);
	return true;
}

int kl_container_step(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, struct kl_ctr *c, const msgpack_object *spec,
    const char *policy)
{
	if (c->done)
		return KL_DONE;
	if (!c->id[0])
		return start(kl, p, spec, c);
	c->cur.size = sizeof(c->cur);
	int rc = kl->rt->container_status(kl->rts, c->id, &c->cur);
	c->have_cur = rc == 0;
	if (rc == KB_ENOTFOUND) {
		/* The runtime lost it: count it as a failed run. */
		c->have_cur = true;
		memset(&c->cur, 0, sizeof(c->cur));
		c->cur.size = sizeof(c->cur);
		c->cur.state = KB_RT_EXITED;
		c->cur.exit_code = 137;
		snprintf(c->cur.reason, sizeof(c->cur.reason),
		    "ContainerStatusUnknown");
	} else if (rc) {
		return KL_WAITING;
	}
	if (c->cur.state == KB_RT_RUNNING && liveness_kill(kl, p, pod, c))
		c->have_cur = kl->rt->container_status(kl->rts, c->id,
				  &c->cur) == 0;
	if (c->cur.state != KB_RT_EXITED) {
		if (!c->wait_reason[0] || c->cur.state == KB_RT_RUNNING)
			clear_wait(c);
		if (c->cur.state == KB_RT_RUNNING)
			kl_probe_sync(kl, p, c, spec);
		return KL_RUNNING;
	}
	kl_probe_forget(kl, p, c); /* exited: nothing to probe */
	if (!wants_restart(policy, c->cur.exit_code)) {
		c->done = true;
		clear_wait(c);
		return KL_DONE;
	}
	if (!backoff_over(kl, p, c))
		return KL_WAITING;
	/* Restart: the old run becomes lastState; its log stays for --previous. */
	c->last = c->cur;
	c->have_last = true;
	memcpy(c->last_id, c->id, sizeof(c->last_id));
	kl->rt->container_remove(kl->rts, c->id);
	pthread_mutex_lock(&kl->mu);
	c->id[0] = '\0';
	c->restarts++;
	pthread_mutex_unlock(&kl->mu);
	c->have_cur = false;
	c->retry_at_ms = 0;
	return start(kl, p, spec, c);
}
