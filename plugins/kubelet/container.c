/* plugins/kubelet/container.c — one container, one step towards its spec:
 * start it when it has no runtime container, read its state when it has,
 * and when it has exited apply the restart policy with CrashLoopBackOff
 * (the first restart at once, then backoff_initial doubling up to
 * backoff_max; reset after a run of twice backoff_max, as Kubernetes). */
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

/* Environment as the spec writes it literally; valueFrom comes later. */
static char **env_of(const msgpack_object *spec)
{
	const msgpack_object *env = kb_mp_get(spec, "env");
	size_t n =
	    env && env->type == MSGPACK_OBJECT_ARRAY ? env->via.array.size : 0;
	char **v = calloc(n + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; v && i < n; i++) {
		const char *name, *val = "";
		size_t nl, vl = 0;
		if (!kb_mp_str(&env->via.array.ptr[i], "name", &name, &nl))
			continue;
		kb_mp_str(&env->via.array.ptr[i], "value", &val, &vl);
		if (asprintf(&v[k], "%.*s=%.*s", (int)nl, name, (int)vl, val) >=
		    0)
			k++;
	}
	return v;
}

static void env_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int start(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *spec, struct kl_ctr *c)
{
	bool present = false;
	int rc = kl->rt->image_present(kl->rts, c->image, &present);
	if (rc || !present) {
		set_wait(c, "ErrImageNeverPull",
		    "Container image \"%s\" is not present with pull policy of Never",
		    c->image);
		return KL_WAITING;
	}
	char *path = kl_log_path(kl, p, c->name, c->restarts);
	char *dir = path ? strdup(path) : NULL;
	if (dir == NULL) {
		free(path);
		return KL_WAITING;
	}
	*strrchr(dir, '/') = '\0';
	kl_mkdirs(dir);
	free(dir);
	char **env = env_of(spec);
	struct kb_rt_container_spec cs = {
		.size = sizeof(cs),
		.sandbox_id = p->sandbox,
		.pod_uid = p->uid,
		.name = c->name,
		.image = c->image,
		.init = c->init,
		.attempt = c->restarts,
		.container = spec,
		.env = (const char *const *)env,
		.log_path = path,
	};
	char id[KB_RT_ID_MAX];
	rc = kl->rt->container_create(kl->rts, &cs, id, sizeof(id));
	env_free(env);
	free(path);
	if (rc) {
		set_wait(c, "CreateContainerError",
		    "cannot create container %s: %s", c->name, kb_strerror(rc));
		return KL_WAITING;
	}
	pthread_mutex_lock(&kl->mu);
	memcpy(c->id, id, sizeof(c->id));
	pthread_mutex_unlock(&kl->mu);
	if ((rc = kl->rt->container_start(kl->rts, c->id)) != 0) {
		set_wait(c, "RunContainerError",
		    "cannot start container %s: %s", c->name, kb_strerror(rc));
		return KL_WAITING;
	}
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
	set_wait(c, "CrashLoopBackOff",
	    "back-off %llds restarting failed container=%s pod=%s_%s(%s)",
	    (long long)(c->backoff_ms + 999) / 1000, c->name, p->name, p->ns,
	    p->uid);
	kb_workqueue_add_after(kl->queue, p->key, c->retry_at_ms - now);
	return false;
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
	if (c->cur.state != KB_RT_EXITED) {
		if (!c->wait_reason[0] || c->cur.state == KB_RT_RUNNING)
			clear_wait(c);
		return KL_RUNNING;
	}
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
