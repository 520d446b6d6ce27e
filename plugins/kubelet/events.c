/* plugins/kubelet/events.c — core/v1 Events about the pods this kubelet
 * runs, as Kubernetes' kubelet records them (Pulled, Created, Started,
 * Killing, BackOff, Unhealthy, Failed), source {kubelet, <node>}: through
 * the SDK's recorder (kb_recorder, kubus/client.h), which aggregates
 * repeats, drops what goes over the spam filter and holds back what goes
 * over the kubelet's own limit (event_burst at once, then event_qps a
 * second: Kubernetes' eventBurst 100 and eventRecordQPS 50). A held
 * request waits for the work queue's KL_EVENTS_KEY, which a worker turns
 * into kl_events_flush. The callers, a sync worker or the prober, never
 * wait for the API server.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kubelet.h"

static void later(void *arg, int64_t ms)
{
	struct kubelet *kl = arg;
	kb_workqueue_add_after(kl->queue, KL_EVENTS_KEY, ms);
}

int kl_events_init(struct kubelet *kl)
{
	struct kb_recorder_opts o = {
		.component = "kubelet",
		.host = kl->node,
		.qps = (int)kl->cfg.event_qps,
		.burst = (int)kl->cfg.event_burst,
		.later = later,
		.later_arg = kl,
	};
	kl->events = kb_recorder_new(kl->ctx, &o);
	return kl->events ? 0 : KB_ENOMEM;
}

void kl_events_flush(struct kubelet *kl)
{
	kb_recorder_flush(kl->events);
}

void kl_events_start(struct kubelet *kl)
{
	kb_recorder_start(kl->events);
}

/* Before the work queue goes: what is held stays, to be freed. */
void kl_events_stop(struct kubelet *kl)
{
	kb_recorder_stop(kl->events);
}

/* After the bus endpoint is closed: no reply callback runs any more. */
void kl_events_free(struct kubelet *kl)
{
	kb_recorder_free(kl->events);
	kl->events = NULL;
}

void kl_event_raw(struct kubelet *kl, const char *ns, const char *pod,
    const char *uid, const char *field_path, bool warning, const char *reason,
    const char *message)
{
	if (ns == NULL || pod == NULL || uid == NULL)
		return;
	struct kb_event_ref ref = { "v1", "Pod", ns, pod, uid, field_path };
	kb_eventf(kl->events, &ref, warning, reason, "%s", message);
}

void kl_event(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool warning, const char *reason, const char *fmt,
    ...)
{
	char msg[1024], fp[300] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c) {
		/* "spec.containers{NAME}" */
		size_t n = 0;
		kl_append(fp, sizeof(fp), &n, "spec.");
		kl_append(fp, sizeof(fp), &n,
		    c->init ? "initContainers" : "containers");
		kl_append(fp, sizeof(fp), &n, "{");
		kl_append(fp, sizeof(fp), &n, c->name);
		kl_append(fp, sizeof(fp), &n, "}");
	}
	kl_event_raw(kl, p->ns, p->name, p->uid, c ? fp : NULL, warning, reason,
	    msg);
}
