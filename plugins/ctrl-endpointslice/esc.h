/* plugins/ctrl-endpointslice/esc.h — the EndpointSlice controller's state
 * and what its files share. */
#ifndef KUBUS_CTRL_ESC_H
#define KUBUS_CTRL_ESC_H

#include "svcpod.h"

#define ESC_MANAGED_BY "endpointslice.kubernetes.io/managed-by"
#define ESC_CONTROLLER "endpointslice-controller.k8s.io"
#define ESC_SERVICE_NAME "kubernetes.io/service-name"
#define ESC_HEADLESS "service.kubernetes.io/headless"
#define ESC_MAX_PORTS 128

struct esc_cfg {
	struct ctrl_conf ctl;
	int64_t max_per_slice;
	int64_t stale_timeout_ms;
};

struct esc_track;

struct esc {
	struct ctrl c;
	struct esc_cfg cfg;
	struct kb_informer *svcs, *pods, *slices;
	pthread_mutex_t mu; /* the tracker */
	struct esc_track *track;
};

/* Reconcile the Service "ns/name" (a ctrl_sync_fn). */
int esc_sync(void *arg, const char *key);

/* --- one endpoint, as this controller writes and compares it ------------------- */

struct es_ep {
	char ip[SP_IP];
	char node[SP_NAME];
	char host[64];
	char zone[64];
	char ns[SP_NAME];
	char name[SP_NAME];
	char uid[SP_UID];
	bool has_ref, ready, serving, terminating;
};

/* Which endpoint this is across versions: the pod's uid, else its IP. */
const char *es_ep_id(const struct es_ep *e);
void es_ep_parse(const msgpack_object *o, struct es_ep *e);
void es_ep_pack(msgpack_packer *pk, const struct es_ep *e);
bool es_ep_equal(const struct es_ep *a, const struct es_ep *b);
/* Ports sorted, packed as written ({name, port, protocol[, appProtocol]}):
 * the bytes are also the key grouping endpoints by port set. */
void es_ports_pack(msgpack_packer *pk, struct sp_port *ports, size_t n);
size_t es_ports_parse(const msgpack_object *arr, struct sp_port *ports,
    size_t cap);

/* --- track.c: the slices this controller wrote that its cache has not shown
 * yet (as Kubernetes' endpointSliceTracker): until it has, a service is not
 * reconciled again, so a stale cache never makes it create twice. ------- */

void esc_track_wrote(struct esc *e, const char *svc_key, const char *slice,
    int64_t generation);
void esc_track_deleted(struct esc *e, const char *svc_key, const char *slice);
/* The slice is gone from the cache: forget it. */
void esc_track_gone(struct esc *e, const char *svc_key, const char *slice);
void esc_track_forget(struct esc *e, const char *svc_key);
/* Does the cache lag behind what was written for this service? */
bool esc_track_stale(struct esc *e, const char *svc_key, const char *ns);
void esc_track_free_all(struct esc *e);

#endif
