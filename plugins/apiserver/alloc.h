/* plugins/apiserver/alloc.h — what rest.c borrows from alloc.c and log.c. */
#ifndef KUBUS_APISERVER_ALLOC_H
#define KUBUS_APISERVER_ALLOC_H

#include "server.h"

/* Services: give obj a ClusterIP from the service CIDR and NodePorts from
 * the node-port range where it needs them, checking explicit ones for
 * conflicts (422 like Kubernetes). old is the previous version on update.
 * Other resources: true at once. */
bool api_allocate(struct api_server *s, const struct api_resource *r,
    json_t *obj, const json_t *old, struct api_error *e);
/* A deleted service gives its addresses back. */
void api_release(struct api_server *s, const struct api_resource *r,
    const json_t *obj);
/* The autoscaling/v1 Scale of a deployment or replica set (new ref). */
json_t *api_scale_of(const struct api_resource *r, const json_t *obj);
/* pods/log: asked of the pod's kubelet over the bus; with follow=true the
 * answer is a stream that asks again from the kubelet's cursor every
 * 100 ms (plugins/kubelet/logs.c) until done or the client goes. */
void api_pod_log(struct api_req *req, struct api_resp *resp);

#endif
