/* plugins/kubelet/adopt.c — a restarted kubelet takes over what still
 * runs instead of starting it again.
 *
 * At start, before any sync, the runtime's sandboxes and containers (ABI
 * 1.1 sandbox_list/container_list) become pod records without a spec: pod
 * key, uid, sandbox id, IP, and the containers found. The first sync of a
 * key (once the pod informer has listed) either claims them for the pod's
 * spec — the newest attempt of each container is its current one, its
 * attempt number its restartCount, the one before it its lastState — or,
 * when the pod is gone or has another uid, kills them and tears the
 * sandbox and its network down (kl_sync → kl_pod_kill).
 *
 * Pod dirs with no sandbox behind them (a kubelet that died between CNI
 * ADD and sandbox_create, or a runtime that lost its state) have their
 * network torn down here, before anything else runs. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kubelet.h"

static void on_sandbox(void *arg, const struct kb_rt_sandbox_info *sb)
{
	struct kubelet *kl = arg;
	if (!sb->pod_uid[0] || !sb->ns[0] || !sb->name[0]) {
		kb_warn(kl->ctx, "removing a sandbox that names no pod",
		    "sandbox=%s", sb->id);
		kl->rt->sandbox_remove(kl->rts, sb->id);
		return;
	}
	char key[2 * KB_RT_ID_MAX + 2];
	snprintf(key, sizeof(key), "%s/%s", sb->ns, sb->name);
	struct kl_pod *p = kl_pod_find(kl, key);
	if (p) {
		/* Two sandboxes for one pod key: keep the first, the other
		 * is a leftover (its containers go with it). */
		kb_warn(kl->ctx, "removing a duplicate sandbox",
		    "pod=%s sandbox=%s", key, sb->id);
		kl->rt->sandbox_remove(kl->rts, sb->id);
		if (strcmp(p->uid, sb->pod_uid))
			kl_pod_net_teardown(kl, sb->pod_uid);
		return;
	}
	/* Its network namespace gone (the machine rebooted): the sandbox
	 * cannot be used again; the pod gets a new one at its sync. */
	char ns[128],
	    *list =
		kl_strf("%s/pods/%s/cni-conflist.json", kl->root, sb->pod_uid);
	kl_netns_path(sb->pod_uid, ns, sizeof(ns));
	bool broken = list && access(list, F_OK) == 0 && !kl_netns_is_ns(ns);
	free(list);
	if (broken) {
		kb_warn(kl->ctx, "removing a sandbox whose netns is gone",
		    "pod=%s sandbox=%s netns=%s", key, sb->id, ns);
		kl->rt->sandbox_remove(kl->rts, sb->id);
		kl_pod_net_teardown(kl, sb->pod_uid);
		return;
	}
	p = kl_pod_stub(kl, sb->ns, sb->name, sb->pod_uid);
	if (p == NULL)
		return;
	snprintf(p->sandbox, sizeof(p->sandbox), "%s", sb->id);
	snprintf(p->ip, sizeof(p->ip), "%s", sb->ip);
	if (!p->ip[0]) {
		/* The runtime did not keep it: the CNI result did. */
		char *path = kl_strf("%s/pods/%s/cni-result.json", kl->root,
		    sb->pod_uid);
		char *res = path ? kl_slurp(path, NULL) : NULL;
		if (res)
			kl_cni_result_ip(res, p->ip, sizeof(p->ip));
		free(res);
		free(path);
	}
}

static struct kl_pod *pod_by_sandbox(struct kubelet *kl, const char *sb,
    const char *uid)
{
	pthread_mutex_lock(&kl->mu);
	struct kl_pod *p;
	for (p = kl->pods; p; p = p->next)
		if ((sb[0] && !strcmp(p->sandbox, sb)) ||
		    (!sb[0] && !strcmp(p->uid, uid)))
			break;
	pthread_mutex_unlock(&kl->mu);
	return p;
}

static void on_container(void *arg, const struct kb_rt_container_info *c)
{
	struct kubelet *kl = arg;
	struct kl_pod *p = pod_by_sandbox(kl, c->sandbox_id, c->pod_uid);
	if (p == NULL) {
		kb_warn(kl->ctx, "removing a container with no sandbox",
		    "container=%s name=%s", c->id, c->name);
		kl->rt->container_stop(kl->rts, c->id, SIGKILL, 0);
		kl->rt->container_remove(kl->rts, c->id);
		return;
	}
	struct kl_found *f = realloc(p->found, (p->nfound + 1) * sizeof(*f));
	if (f == NULL)
		return;
	p->found = f;
	f = &p->found[p->nfound++];
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", c->id);
	snprintf(f->name, sizeof(f->name), "%s", c->name);
	f->attempt = c->attempt;
	f->init = c->init;
	f->state = c->state;
}

/* Pod dirs whose pod has no sandbox: tear their network down. */
static void sweep_pod_dirs(struct kubelet *kl)
{
	char *dir = kl_strf("%s/pods", kl->root);
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (pod_by_sandbox(kl, "", e->d_name))
			continue;
		kb_info(kl->ctx, "cleaning up after a pod with no sandbox",
		    "uid=%s", e->d_name);
		kl_pod_net_teardown(kl, e->d_name);
	}
	if (d)
		closedir(d);
	free(dir);
}

void kl_adopt(struct kubelet *kl)
{
	const struct kb_runtime_ops *rt = kl->rt;
	if (!KB_RT_HAS(rt, container_list) || rt->sandbox_list == NULL ||
	    rt->container_list == NULL) {
		kb_info(kl->ctx, "the runtime cannot list: nothing adopted",
		    "runtime=%s", kl->cfg.runtime);
		sweep_pod_dirs(kl);
		return;
	}
	int rc = rt->sandbox_list(kl->rts, on_sandbox, kl);
	if (rc == 0)
		rc = rt->container_list(kl->rts, on_container, kl);
	if (rc)
		kb_warn(kl->ctx, "cannot list the runtime's sandboxes",
		    "err=\"%s\"", kb_strerror(rc));
	sweep_pod_dirs(kl);
	size_t pods = 0, ctrs = 0;
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p; p = p->next, pods++)
		ctrs += p->nfound;
	pthread_mutex_unlock(&kl->mu);
	if (pods)
		kb_info(kl->ctx, "adopted from the runtime",
		    "pods=%zu containers=%zu", pods, ctrs);
	/* Their keys are synced (claimed or cleaned up) once the pod
	 * informer has listed. */
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p; p = p->next)
		kb_workqueue_add(kl->queue, p->key);
	pthread_mutex_unlock(&kl->mu);
}

static void remove_found(struct kubelet *kl, struct kl_found *f)
{
	kl->rt->container_stop(kl->rts, f->id, SIGKILL, 0);
	kl->rt->container_remove(kl->rts, f->id);
	f->id[0] = '\0';
}

void kl_adopt_claim(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod)
{
	p->adopted = false;
	/* Under mu: the log service may be reading the pod's containers. */
	pthread_mutex_lock(&kl->mu);
	free(p->ctrs);
	p->ctrs = NULL;
	p->nctrs = p->ninit = 0;
	int rc = kl_pod_set_spec(p, pod);
	pthread_mutex_unlock(&kl->mu);
	if (rc != 0) {
		kb_warn(kl->ctx, "out of memory adopting a pod", "pod=%s",
		    p->key);
		return;
	}
	const char *st;
	size_t stl;
	if (kb_mp_str(pod, "status.startTime", &st, &stl) &&
	    stl < sizeof(p->start_time))
		snprintf(p->start_time, sizeof(p->start_time), "%.*s", (int)stl,
		    st);
	bool main_found = false;
	for (size_t i = 0; i < p->nctrs; i++) {
		struct kl_ctr *c = &p->ctrs[i];
		struct kl_found *cur = NULL, *prev = NULL;
		for (size_t j = 0; j < p->nfound; j++) {
			struct kl_found *f = &p->found[j];
			if (!f->id[0] || f->init != c->init ||
			    strcmp(f->name, c->name))
				continue;
			if (cur == NULL || f->attempt > cur->attempt) {
				prev = cur;
				cur = f;
			} else if (prev == NULL || f->attempt > prev->attempt) {
				prev = f;
			}
		}
		if (cur == NULL)
			continue;
		main_found |= !c->init;
		pthread_mutex_lock(&kl->mu);
		memcpy(c->id, cur->id, sizeof(c->id));
		c->restarts = cur->attempt;
		pthread_mutex_unlock(&kl->mu);
		c->cur.size = sizeof(c->cur);
		c->have_cur =
		    kl->rt->container_status(kl->rts, c->id, &c->cur) == 0;
		cur->id[0] = '\0';
		if (prev) {
			c->last.size = sizeof(c->last);
			if (kl->rt->container_status(kl->rts, prev->id,
				&c->last) == 0 &&
			    c->last.state == KB_RT_EXITED) {
				c->have_last = true;
				memcpy(c->last_id, prev->id,
				    sizeof(c->last_id));
			}
			/* Only its log is still wanted (for --previous). */
			remove_found(kl, prev);
		}
		kb_info(kl->ctx, "adopted container",
		    "pod=%s container=%s id=%s restarts=%u", p->key, c->name,
		    c->id, c->restarts);
	}
	/* Main containers ran, so the init containers had all succeeded,
	 * even those the runtime no longer has. */
	for (size_t i = 0; main_found && i < p->ninit; i++) {
		struct kl_ctr *c = &p->ctrs[i];
		if (c->id[0])
			continue;
		c->done = true;
		c->have_cur = true;
		memset(&c->cur, 0, sizeof(c->cur));
		c->cur.size = sizeof(c->cur);
		c->cur.state = KB_RT_EXITED;
		snprintf(c->cur.reason, sizeof(c->cur.reason), "Completed");
	}
	/* Older attempts beyond the last one, and names no longer in the
	 * spec. */
	for (size_t j = 0; j < p->nfound; j++)
		if (p->found[j].id[0])
			remove_found(kl, &p->found[j]);
	free(p->found);
	p->found = NULL;
	p->nfound = 0;
}
