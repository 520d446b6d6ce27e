/* plugins/apiserver/bootstrap.c — what a new cluster has from the start:
 * the namespaces default, kube-system, kube-public and kube-node-lease,
 * and the `kubernetes` Service in default, as kube-apiserver makes them. */
#include <stdio.h>
#include <string.h>

#include "server.h"

static void ensure(struct api_server *s, const char *plural, const char *ns, json_t *obj)
{
	struct api_req req = { 0 };
	struct api_resp resp = { 0 };
	static char *const groups[] = { "system:masters" };
	struct api_user system = { .name = "system:apiserver", .uid = "", .groups = (char **)groups,
		.ngroups = 1 };
	req.srv = s;
	req.verb = API_CREATE;
	req.res = api_resource_find("", "v1", plural);
	req.ns = ns ? strdup(ns) : NULL;
	req.body = json_incref(obj); /* a create takes the body: obj is ours still */
	req.user = &system;
	api_handle(&req, &resp);
	if (resp.code != 201 && resp.code != 409)
		kb_warn(s->ctx, "bootstrap object not created", "resource=%s name=%s code=%d message=\"%s\"",
		    plural, api_get_str(obj, "metadata.name"), resp.code,
		    api_get_str(resp.json, "message") ?: "");
	api_resp_free(&resp);
	api_req_free(&req);
	json_decref(obj);
}

void api_bootstrap(struct api_server *s)
{
	static const char *const namespaces[] = { "default", "kube-system", "kube-public",
		"kube-node-lease" };
	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++)
		ensure(s, "namespaces", NULL,
		    json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
		        "metadata", "name", namespaces[i]));
	ensure(s, "services", "default",
	    json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s, s:[{s:s, s:s, s:i, s:i}]}}",
	        "apiVersion", "v1", "kind", "Service", "metadata", "name", "kubernetes",
	        "namespace", "default", "labels", "component", "apiserver", "provider",
	        "kubernetes", "spec", "type", "ClusterIP", "ports", "name", "https", "protocol",
	        "TCP", "port", 443, "targetPort", 6443));
}
