/* plugins/ctrl-endpoints/svcpod.h — what the endpoints and endpointslice
 * controllers share about Services and their pods: which services select
 * a pod, whether a pod belongs in endpoints, a service port's targetPort
 * resolved on one pod. Compiled into both plugins (as ctrl-common is). */
#ifndef KUBUS_CTRL_SVCPOD_H
#define KUBUS_CTRL_SVCPOD_H

#include "ctrl.h"

#define SP_NAME 254
#define SP_IP 64
#define SP_UID 64
#define SP_PORTNAME 64

/* A service the controllers act on: it has a non-empty selector and is not
 * of type ExternalName (an empty selector is stored as none in Kubernetes,
 * and a service without one has its endpoints written by someone else). */
bool sp_svc_selects_pods(const msgpack_object *svc);
/* Does the service's selector (a map) select this pod (same namespace)? */
bool sp_svc_selects(const msgpack_object *svc, const msgpack_object *pod);
/* clusterIP None */
bool sp_svc_headless(const msgpack_object *svc);
bool sp_svc_publish_not_ready(const msgpack_object *svc);

/* Enqueue every service of the pod's namespace that selects it. */
void sp_enqueue_services(struct ctrl *c, struct kb_informer *svcs,
    const msgpack_object *pod);
/* Handle a pod update: nothing when no field an endpoint shows changed,
 * else the services selecting the old and the new pod. */
void sp_pod_updated(struct ctrl *c, struct kb_informer *svcs,
    const msgpack_object *old, const msgpack_object *pod);

/* Succeeded or Failed. */
bool sp_pod_terminal(const msgpack_object *pod);
/* The pod's IPv4 (status.podIP, else the first IPv4 of status.podIPs) into
 * buf; false when it has none. */
bool sp_pod_ipv4(const msgpack_object *pod, char *buf, size_t len);
/* spec.hostname when spec.subdomain names the service (as Kubernetes'
 * ShouldSetHostname), into buf; false otherwise. */
bool sp_pod_hostname(const msgpack_object *pod, const msgpack_object *svc,
    char *buf, size_t len);

/* One resolved port of an endpoint. */
struct sp_port {
	char name[SP_PORTNAME];
	char proto[16];
	char app[128];
	bool has_app;
	int64_t port;
};
/* The service port resolved on the pod (FindPort): a numeric targetPort
 * as is, a named one through the pod's container ports of the same
 * protocol (and sidecar init containers). false when it does not resolve. */
bool sp_resolve_port(const msgpack_object *pod, const msgpack_object *svcport,
    struct sp_port *out);
int sp_port_cmp(const struct sp_port *a, const struct sp_port *b);

/* Copy a msgpack string at path into buf (empty when absent). */
void sp_str(const msgpack_object *o, const char *path, char *buf, size_t len);

/* Pack a string map sorted by key (so equal maps pack to equal bytes),
 * without the keys in `drop` (NULL-terminated) and with the pairs in `add`
 * (key, value, …, NULL); either may be NULL. */
void sp_pack_strmap(msgpack_packer *pk, const msgpack_object *m,
    const char *const *drop, const char *const *add);

#endif
