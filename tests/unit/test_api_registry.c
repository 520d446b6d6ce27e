/* tests/unit/test_api_registry.c — the API server's resource table
 * (plugins/apiserver/registry.c): lookups, keys, and that every entry
 * says what Kubernetes says about the resource. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api.h"


		    static const
    struct api_resource *find(const char *g, const char *p)
{
	const struct api_resource *r = api_resource_find(g, "v1", p);
	assert_non_null(r);
	return r;
}

static bool has(const char *const *list, size_t max, const char *s)
{
	for (size_t i = 0; i < max && list[i]; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

static void test_find(void **state)
{
	(void)state;
	assert_string_equal(find("", "pods")->kind, "Pod");
	assert_string_equal(find("apps", "deployments")->list_kind,
	    "DeploymentList");
	assert_string_equal(find("discovery.k8s.io", "endpointslices")->kind,
	    "EndpointSlice");
	assert_string_equal(find("coordination.k8s.io", "leases")->singular,
	    "lease");
	/* NULL group is the core group */
	assert_ptr_equal(api_resource_find(NULL, "v1", "pods"),
	    find("", "pods"));
	assert_null(api_resource_find("", "v1", "deployments"));
	assert_null(api_resource_find("apps", "v2", "deployments"));
	assert_null(api_resource_find("", "v1", "pod"));
	assert_null(api_resource_find("", "v1", NULL));
	assert_null(api_resource_find("metrics.k8s.io", "v1beta1", "pods"));
}

static void test_by_kind(void **state)
{
	(void)state;
	assert_ptr_equal(api_resource_by_kind("v1", "Pod"), find("", "pods"));
	assert_ptr_equal(api_resource_by_kind("apps/v1", "ReplicaSet"),
	    find("apps", "replicasets"));
	/* the two Event kinds are told apart by their apiVersion */
	const struct api_resource *core = api_resource_by_kind("v1", "Event");
	const struct api_resource *ev =
	    api_resource_by_kind("events.k8s.io/v1", "Event");
	assert_non_null(core);
	assert_non_null(ev);
	assert_ptr_not_equal(core, ev);
	assert_string_equal(ev->group, "events.k8s.io");
	assert_null(api_resource_by_kind("apps/v1", "Pod"));
	assert_null(api_resource_by_kind("v1", "Deployment"));
	assert_null(api_resource_by_kind("extensions/v1beta1", "Deployment"));
	assert_null(api_resource_by_kind("v1", NULL));
	assert_null(api_resource_by_kind("/v1", "Pod"));
}

static void check_key(const struct api_resource *r, const char *ns,
    const char *name, const char *want)
{
	char *k = api_key(r, ns, name);
	assert_non_null(k);
	assert_string_equal(k, want);
	free(k);
}

static void test_keys(void **state)
{
	(void)state;
	const struct api_resource *pods = find("", "pods");
	check_key(pods, "default", "web", "/registry/pods/default/web");
	check_key(pods, "default", NULL, "/registry/pods/default/");
	check_key(pods, NULL, NULL, "/registry/pods/");
	const struct api_resource *nodes = find("", "nodes");
	check_key(nodes, NULL, "n1", "/registry/nodes/n1");
	/* cluster-scoped resources ignore a namespace */
	check_key(nodes, "default", "n1", "/registry/nodes/n1");
	check_key(nodes, NULL, NULL, "/registry/nodes/");
	check_key(find("", "namespaces"), NULL, "kube-system",
	    "/registry/namespaces/kube-system");
	check_key(find("apps", "deployments"), "ns1", "d",
	    "/registry/apps/deployments/ns1/d");
	check_key(find("apps", "deployments"), NULL, NULL,
	    "/registry/apps/deployments/");
	check_key(find("coordination.k8s.io", "leases"), "kube-node-lease",
	    "n1", "/registry/coordination.k8s.io/leases/kube-node-lease/n1");
	/* core and events.k8s.io events are kept apart */
	check_key(find("", "events"), "default", "e",
	    "/registry/events/default/e");
	check_key(find("events.k8s.io", "events"), "default", "e",
	    "/registry/events.k8s.io/events/default/e");
}

static void test_group_version(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(api_group_version(find("", "pods"), buf,
				sizeof(buf)),
	    "v1");
	assert_string_equal(api_group_version(find("apps", "replicasets"), buf,
				sizeof(buf)),
	    "apps/v1");
	assert_string_equal(api_group_version(find("events.k8s.io", "events"),
				buf, sizeof(buf)),
	    "events.k8s.io/v1");
}

/* Kinds as Kubernetes' GroupKind prints them in messages. */
static void test_kind_qual(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(api_kind_qual(find("", "pods"), buf, sizeof(buf)),
	    "Pod");
	assert_string_equal(api_kind_qual(find("apps", "deployments"), buf,
				sizeof(buf)),
	    "Deployment.apps");
	assert_string_equal(api_kind_qual(find("events.k8s.io", "events"), buf,
				sizeof(buf)),
	    "Event.events.k8s.io");
}

/* Kubernetes' scopes, short names and categories. */
static void test_as_kubernetes(void **state)
{
	(void)state;
	static const struct {
		const char *group, *plural, *shortname;
		bool namespaced, all;
	} want[] = {
		{ "", "namespaces", "ns", false, false },
		{ "", "nodes", "no", false, false },
		{ "", "pods", "po", true, true },
		{ "", "services", "svc", true, true },
		{ "", "endpoints", "ep", true, false },
		{ "", "configmaps", "cm", true, false },
		{ "", "secrets", NULL, true, false },
		{ "", "serviceaccounts", "sa", true, false },
		{ "", "events", "ev", true, false },
		{ "apps", "deployments", "deploy", true, true },
		{ "apps", "replicasets", "rs", true, true },
		{ "discovery.k8s.io", "endpointslices", NULL, true, false },
		{ "coordination.k8s.io", "leases", NULL, true, false },
		{ "authorization.k8s.io", "selfsubjectaccessreviews", NULL,
		    false, false },
		{ "events.k8s.io", "events", "ev", true, false },
	};
	assert_int_equal(api_nresources, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct api_resource *r =
		    find(want[i].group, want[i].plural);
		assert_int_equal(r->namespaced, want[i].namespaced);
		if (want[i].shortname) {
			assert_string_equal(r->short_names[0],
			    want[i].shortname);
			assert_null(r->short_names[1]);
		} else {
			assert_null(r->short_names[0]);
		}
		assert_int_equal(has(r->categories, 3, "all"), want[i].all);
	}
}

static void test_subresources(void **state)
{
	(void)state;
	const struct api_resource *pods = find("", "pods");
	unsigned want = API_SUB_STATUS | API_SUB_BINDING | API_SUB_EVICTION |
	    API_SUB_LOG | API_SUB_EXEC | API_SUB_PORTFORWARD | API_SUB_ATTACH;
	assert_int_equal(pods->subresources, want);
	assert_true(pods->has_status);
	assert_int_equal(find("apps", "deployments")->subresources,
	    API_SUB_STATUS | API_SUB_SCALE);
	assert_int_equal(find("apps", "replicasets")->subresources,
	    API_SUB_STATUS | API_SUB_SCALE);
	assert_int_equal(find("", "nodes")->subresources, API_SUB_STATUS);
	assert_int_equal(find("", "services")->subresources, API_SUB_STATUS);
	assert_int_equal(find("", "configmaps")->subresources, 0);
	assert_false(find("", "configmaps")->has_status);
	/* generation: the workloads and EndpointSlice, as in Kubernetes */
	assert_true(find("apps", "deployments")->generation);
	assert_true(find("apps", "replicasets")->generation);
	assert_true(find("discovery.k8s.io", "endpointslices")->generation);
	assert_false(find("", "pods")->generation);
	assert_false(find("", "services")->generation);
	assert_true(
	    find("authorization.k8s.io", "selfsubjectaccessreviews")->virtual_);
	assert_false(find("", "pods")->virtual_);
}

/* Every stored resource prints a table with a Name (or, for events,
 * Last Seen first) column, a row function and sane columns. */
static void test_columns(void **state)
{
	(void)state;
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (r->virtual_) {
			assert_null(r->columns);
			continue;
		}
		assert_non_null(r->columns);
		assert_non_null(r->row);
		assert_true(r->ncolumns >= 2);
		size_t names = 0;
		for (size_t j = 0; j < r->ncolumns; j++) {
			const struct api_column *c = &r->columns[j];
			assert_true(!strcmp(c->type, "string") ||
			    !strcmp(c->type, "integer"));
			assert_true(c->priority == 0 || c->priority == 1);
			assert_non_null(c->description);
			names += !strcmp(c->format, "name");
		}
		assert_int_equal(names, 1);
	}
	const struct api_resource *pods = find("", "pods");
	assert_int_equal(pods->ncolumns, 9);
	assert_string_equal(pods->columns[0].name, "Name");
	assert_string_equal(pods->columns[4].name, "Age");
	assert_int_equal(pods->columns[4].priority, 0);
	assert_string_equal(pods->columns[5].name, "IP");
	assert_int_equal(pods->columns[5].priority, 1);
}

/* Defaulting and validation hooks as agreed with admit.c. */
static void test_hooks(void **state)
{
	(void)state;
	assert_ptr_equal(find("", "pods")->defaults, api_default_pod);
	assert_ptr_equal(find("", "pods")->validate, api_validate_pod);
	assert_ptr_equal(find("apps", "deployments")->defaults,
	    api_default_deployment);
	assert_ptr_equal(find("", "secrets")->defaults, api_default_secret);
	assert_ptr_equal(find("", "configmaps")->validate,
	    api_validate_configmap);
	assert_null(find("", "configmaps")->defaults);
	assert_ptr_equal(find("", "events")->validate, api_validate_event);
	/* events.k8s.io events have another schema */
	assert_null(find("events.k8s.io", "events")->validate);
	assert_ptr_equal(find("discovery.k8s.io", "endpointslices")->validate,
	    api_validate_endpointslice);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_by_kind),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_group_version),
		cmocka_unit_test(test_kind_qual),
		cmocka_unit_test(test_as_kubernetes),
		cmocka_unit_test(test_subresources),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_hooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
