/* plugins/kubelet/heartbeat.c — one thread for everything periodic:
 * register the Node (retried until it works), renew the Lease, report
 * node status, and re-enqueue every pod each sync_period. */
#include <errno.h>
#include <time.h>

#include "kubelet.h"

#define RETRY_MS 1000
/* How often container log sizes are checked: every sync period, but at
 * least every 10 s and at most every second. */
#define ROTATE_MIN_MS 1000
#define ROTATE_MAX_MS 10000

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void *run(void *arg)
{
	struct kubelet *kl = arg;
	pthread_setname_np(pthread_self(), "kubelet:beat");
	int64_t now = kl_mono_ms();
	int64_t lease_at = now, status_at = now,
		relist_at = now + kl->cfg.sync_ms, rotate_at = now;
	int64_t rotate_ms = kl->cfg.sync_ms < ROTATE_MIN_MS ? ROTATE_MIN_MS :
	    kl->cfg.sync_ms > ROTATE_MAX_MS                 ? ROTATE_MAX_MS :
							      kl->cfg.sync_ms;
	pthread_mutex_lock(&kl->mu);
	while (!kl->stopping) {
		pthread_mutex_unlock(&kl->mu);
		now = kl_mono_ms();
		if (!kl->registered && kl_node_register(kl) == 0)
			kl->registered = true;
		if (kl->registered && now >= lease_at)
			lease_at = now +
			    (kl_lease_renew(kl) == 0 ?
				    kl->cfg.lease_ms :
				    min64(RETRY_MS, kl->cfg.lease_ms));
		if (kl->registered && now >= status_at)
			status_at = now +
			    (kl_node_status(kl) == 0 ?
				    kl->cfg.status_ms :
				    min64(RETRY_MS, kl->cfg.status_ms));
		if (now >= relist_at) {
			kl_enqueue_all(kl);
			relist_at = now + kl->cfg.sync_ms;
		}
		if (now >= rotate_at) {
			kl_logs_rotate(kl, kl->cfg.log_max_bytes);
			rotate_at = now + rotate_ms;
		}
		int64_t next = min64(min64(relist_at, rotate_at),
		    kl->registered ? min64(lease_at, status_at) :
				     now + RETRY_MS);
		pthread_mutex_lock(&kl->mu);
		if (kl->stopping)
			break;
		struct timespec ts = { .tv_sec = next / 1000,
			.tv_nsec = (next % 1000) * 1000000 };
		pthread_cond_timedwait(&kl->cv, &kl->mu, &ts);
	}
	pthread_mutex_unlock(&kl->mu);
	return NULL;
}

int kl_heartbeat_start(struct kubelet *kl)
{
	if (pthread_create(&kl->heartbeat, NULL, run, kl) != 0)
		return KB_ESYS;
	kl->heartbeat_started = true;
	return 0;
}

void kl_heartbeat_stop(struct kubelet *kl)
{
	if (!kl->heartbeat_started)
		return;
	pthread_mutex_lock(&kl->mu);
	kl->stopping = true;
	pthread_cond_broadcast(&kl->cv);
	pthread_mutex_unlock(&kl->mu);
	pthread_join(kl->heartbeat, NULL);
	kl->heartbeat_started = false;
}
