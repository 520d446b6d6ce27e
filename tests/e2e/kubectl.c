/* tests/e2e/kubectl.c — what a Kubernetes user types, and what kubectl
 * must print back, word for word where Kubernetes' wording is fixed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "harness.h"

/* A formatted argument string in the caller's buffer `a`. */
#define ARGS(...) (snprintf(a, sizeof(a), __VA_ARGS__), a)

static const char deploy_a[] = "apiVersion: apps/v1\n"
			       "kind: Deployment\n"
			       "metadata:\n"
			       "  name: app1\n"
			       "  namespace: e2e\n"
			       "  labels: {app: app1}\n"
			       "spec:\n"
			       "  replicas: 1\n"
			       "  selector: {matchLabels: {app: app1}}\n"
			       "  template:\n"
			       "    metadata: {labels: {app: app1}}\n"
			       "    spec:\n"
			       "      containers:\n"
			       "      - name: app\n"
			       "        image: nginx:1.27\n"
			       "        ports: [{containerPort: 80}]\n";

static const char deploy_b[] = "apiVersion: apps/v1\n"
			       "kind: Deployment\n"
			       "metadata:\n"
			       "  name: app1\n"
			       "  namespace: e2e\n"
			       "  labels: {app: app1}\n"
			       "spec:\n"
			       "  replicas: 2\n"
			       "  selector: {matchLabels: {app: app1}}\n"
			       "  template:\n"
			       "    metadata: {labels: {app: app1}}\n"
			       "    spec:\n"
			       "      containers:\n"
			       "      - name: app\n"
			       "        image: nginx:1.27\n"
			       "        ports: [{containerPort: 80}]\n"
			       "      - name: side\n"
			       "        image: busybox:1.36\n"
			       "        command: [sleep, \"3600\"]\n";

static const char deploy_c[] = "apiVersion: apps/v1\n"
			       "kind: Deployment\n"
			       "metadata:\n"
			       "  name: app1\n"
			       "  namespace: e2e\n"
			       "  labels: {app: app1}\n"
			       "spec:\n"
			       "  replicas: 2\n"
			       "  selector: {matchLabels: {app: app1}}\n"
			       "  template:\n"
			       "    metadata: {labels: {app: app1}}\n"
			       "    spec:\n"
			       "      containers:\n"
			       "      - name: side\n"
			       "        image: busybox:1.36\n"
			       "        command: [sleep, \"3600\"]\n";

static const char ssa_1[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa1\n  namespace: e2e\n"
    "data:\n  k: v1\n";
static const char ssa_2[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa1\n  namespace: e2e\n"
    "data:\n  k: v2\n  more: yes-please\n";
static const char del_cm[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: del1\n  namespace: e2e\n"
    "data:\n  gone: soon\n";
static const char cm1_again[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm1\n  namespace: e2e\n";
static const char event_yaml[] =
    "apiVersion: v1\n"
    "kind: Event\n"
    "metadata: {name: ev1, namespace: e2e}\n"
    "involvedObject: {apiVersion: v1, kind: ConfigMap, name: cm1, namespace: e2e, uid: UID}\n"
    "reason: Tested\n"
    "message: hello from e2e\n"
    "type: Normal\n"
    "count: 1\n"
    "firstTimestamp: \"2025-01-01T00:00:00Z\"\n"
    "lastTimestamp: \"2025-01-01T00:00:00Z\"\n"
    "source: {component: e2e}\n";
static const char bad_deploy[] =
    "apiVersion: apps/v1\n"
    "kind: Deployment\n"
    "metadata: {name: bad, namespace: e2e}\n"
    "spec:\n"
    "  replicas: -1\n"
    "  selector: {matchLabels: {app: x}}\n"
    "  template:\n"
    "    metadata: {labels: {app: x}}\n"
    "    spec:\n"
    "      containers: [{name: app, image: nginx}]\n";
static const char unknown_field[] =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: strict1, namespace: e2e}\n"
    "dataa: {x: y}\n";

static void basics(struct e2e *e)
{
	e2e_kubectl(e, "version", 0, "version",
	    "~^Server Version: v1\\.[0-9]+\\.", NULL);
	e2e_kubectl(e, "api-resources", 0, "api-resources",
	    "~^NAME +SHORTNAMES +APIVERSION +NAMESPACED +KIND",
	    "~^deployments +deploy +apps/v1 +true +Deployment$",
	    "~^pods +po +v1 +true +Pod$",
	    "~^namespaces +ns +v1 +false +Namespace$",
	    "~^services +svc +v1 +true +Service$", NULL);
	e2e_kubectl(e, "api-versions", 0, "api-versions", "~^apps/v1$", "~^v1$",
	    NULL);
}

/* kubectl 1.32's create subcommands send protobuf bodies. */
static void creates(struct e2e *e)
{
	e2e_kubectl(e, "create namespace", 0, "create namespace e2e",
	    "=namespace/e2e created", NULL);
	e2e_kubectl(e, "create configmap", 0,
	    "create configmap cm1 -n e2e --from-literal=a=b",
	    "=configmap/cm1 created", NULL);
	e2e_kubectl(e, "create secret generic", 0,
	    "create secret generic s1 -n e2e --from-literal=k=v",
	    "=secret/s1 created", NULL);
	e2e_kubectl(e, "create deployment", 0,
	    "create deployment web -n e2e --image=nginx:1.27",
	    "=deployment.apps/web created", NULL);
	e2e_kubectl(e, "create service clusterip", 0,
	    "create service clusterip svc1 -n e2e --tcp=80:8080",
	    "=service/svc1 created", NULL);
	e2e_kubectl(e, "create service nodeport", 0,
	    "create service nodeport np1 -n e2e --tcp=80:8080",
	    "=service/np1 created", NULL);
	e2e_kubectl(e, "create serviceaccount", 0,
	    "create serviceaccount sa1 -n e2e", "=serviceaccount/sa1 created",
	    NULL);
}

static void get_tables(struct e2e *e)
{
	e2e_kubectl(e, "get configmaps (table)", 0, "get configmaps -n e2e",
	    "~^NAME +DATA +AGE$", "~^cm1 +1 +[0-9]+s$", NULL);
	e2e_kubectl(e, "get deployments -o wide", 0,
	    "get deploy -n e2e -o wide",
	    "~^NAME +READY +UP-TO-DATE +AVAILABLE +AGE +CONTAINERS +IMAGES +SELECTOR$",
	    "~^web +0/1 +0 +0 +[0-9]+s +nginx +nginx:1\\.27 +app=web$", NULL);
	e2e_kubectl(e, "get services", 0, "get svc -n e2e",
	    "~^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\\(S\\) +AGE$",
	    "~^svc1 +ClusterIP +10\\.[0-9.]+ +<none> +80/TCP +[0-9]+s$",
	    "~^np1 +NodePort +10\\.[0-9.]+ +<none> +80:3[0-9]{4}/TCP +[0-9]+s$",
	    NULL);
	e2e_kubectl(e, "get secrets", 0, "get secrets -n e2e",
	    "~^NAME +TYPE +DATA +AGE$", "~^s1 +Opaque +1 +[0-9]+s$", NULL);
	e2e_kubectl(e, "get namespaces", 0, "get ns", "~^NAME +STATUS +AGE$",
	    "~^e2e +Active +[0-9]+s$", NULL);
	e2e_kubectl(e, "get serviceaccounts", 0, "get sa -n e2e",
	    "~^sa1 +[0-9]+ +[0-9]+s$", NULL);
	e2e_kubectl(e, "get all", 0, "get all -n e2e", "deployment.apps/web",
	    "service/svc1", NULL);
	e2e_kubectl(e, "get two kinds", 0, "get cm,secret -n e2e",
	    "configmap/cm1", "secret/s1", NULL);
	e2e_kubectl(e, "get -A", 0, "get cm -A",
	    "~^NAMESPACE +NAME +DATA +AGE$", "~^e2e +cm1 +1 +[0-9]+s$", NULL);
	e2e_kubectl(e, "get --show-labels", 0,
	    "get deploy -n e2e --show-labels", "~^web .* app=web$", NULL);
	e2e_kubectl(e, "get an empty list", 0, "get pods -n e2e",
	    "=No resources found in e2e namespace.", NULL);
}

static void get_formats(struct e2e *e)
{
	e2e_kubectl(e, "get -o yaml", 0, "get cm cm1 -n e2e -o yaml",
	    "~^kind: ConfigMap$", "~^apiVersion: v1$", "~^  a: b$",
	    "~^  name: cm1$", "~^  namespace: e2e$",
	    "~^  resourceVersion: \"[0-9]+\"$", "~^  uid: [0-9a-f-]{36}$",
	    "~^  creationTimestamp: \"20[0-9-]+T[0-9:]+Z\"$", NULL);
	e2e_kubectl(e, "get -o json", 0, "get cm cm1 -n e2e -o json",
	    "\"kind\": \"ConfigMap\"", "\"a\": \"b\"", NULL);
	e2e_kubectl(e, "get list -o yaml", 0, "get cm -n e2e -o yaml",
	    "~^kind: List$", "~^- apiVersion: v1$", NULL);
	e2e_kubectl(e, "get -o name", 0, "get cm -n e2e -o name",
	    "=configmap/cm1", NULL);
	e2e_kubectl(e, "get -o jsonpath", 0,
	    "get cm cm1 -n e2e -o jsonpath='{.data.a}'", "=b", NULL);
	e2e_kubectl(e, "get -o custom-columns", 0,
	    "get deploy web -n e2e -o custom-columns=N:.metadata.name,R:.spec.replicas",
	    "~^N +R$", "~^web +1$", NULL);
	e2e_kubectl(e, "get -o go-template", 0,
	    "get secret s1 -n e2e -o go-template='{{.data.k}}'", "=dg==", NULL);
}

static void watch_and_describe(struct e2e *e)
{
	char a[4096];
	e2e_sh(e, "get -w sees a concurrent create", 0,
	    ARGS("KUBECTL get configmaps -n e2e -w > %s/w1.out 2>&1 & p=$!; sleep 2; "
		 "KUBECTL create configmap cmw -n e2e --from-literal=x=y >/dev/null; sleep 2; "
		 "kill $p; wait $p; cat %s/w1.out",
		e->tmp, e->tmp),
	    "~^cm1 +1 +[0-9]+s$", "~^cmw +1 +[0-9]+s$", "!rror", NULL);
	e2e_kubectl(e, "describe deployment", 0,
	    "describe deployment web -n e2e", "~^Name: +web$",
	    "~^Namespace: +e2e$", "~^Replicas: +1 desired",
	    "~^Selector: +app=web$", "nginx:1.27", NULL);
	e2e_kubectl(e, "describe configmap", 0, "describe configmap cm1 -n e2e",
	    "~^Name: +cm1$", "~^Data$", "~^a:$", "~^Events: +<none>$", NULL);
	e2e_kubectl(e, "describe namespace", 0, "describe namespace e2e",
	    "~^Status: +Active$", NULL);
	e2e_kubectl(e, "describe service", 0, "describe service svc1 -n e2e",
	    "~^Type: +ClusterIP$", "~^IP: +10\\.", "~^Port: +80-8080 +80/TCP$",
	    NULL);
}

static void applies(struct e2e *e)
{
	char a[4096];
	char *fa = e2e_file(e, "deploy-a.yaml", deploy_a);
	char *fb = e2e_file(e, "deploy-b.yaml", deploy_b);
	char *fc = e2e_file(e, "deploy-c.yaml", deploy_c);
	char *s1 = e2e_file(e, "ssa-1.yaml", ssa_1);
	char *s2 = e2e_file(e, "ssa-2.yaml", ssa_2);
	const char *names =
	    "get deploy app1 -n e2e -o jsonpath='{.spec.template.spec.containers[*].name}'";
	e2e_kubectl(e, "apply (creates)", 0, ARGS("apply -f %s", fa),
	    "=deployment.apps/app1 created", NULL);
	e2e_kubectl(e, "apply a longer container list", 0,
	    ARGS("apply -f %s", fb), "=deployment.apps/app1 configured", NULL);
	e2e_kubectl(e, "apply merged the containers", 0, names, "=app side",
	    NULL);
	e2e_kubectl(e, "apply again: unchanged", 0, ARGS("apply -f %s", fb),
	    "=deployment.apps/app1 unchanged", NULL);
	e2e_kubectl(e, "apply dropping a container", 0, ARGS("apply -f %s", fc),
	    "=deployment.apps/app1 configured", NULL);
	e2e_kubectl(e, "apply removed the dropped container", 0, names, "=side",
	    NULL);
	e2e_kubectl(e, "apply --server-side (creates)", 0,
	    ARGS("apply --server-side -f %s", s1),
	    "=configmap/ssa1 serverside-applied", NULL);
	e2e_kubectl(e, "apply --server-side (updates)", 0,
	    ARGS("apply --server-side -f %s", s2),
	    "=configmap/ssa1 serverside-applied", NULL);
	e2e_kubectl(e, "server-side apply took", 0,
	    "get cm ssa1 -n e2e -o jsonpath='{.data.k} {.data.more}'",
	    "=v2 yes-please", NULL);
	free(fa);
	free(fb);
	free(fc);
	free(s1);
	free(s2);
}

static void replace_and_patch(struct e2e *e)
{
	char a[4096];
	e2e_sh(e, "replace", 0,
	    ARGS("KUBECTL get configmap cm1 -n e2e -o yaml > %s/old.yaml && "
		 "sed 's/^  a: b$/  a: replaced/' %s/old.yaml > %s/new.yaml && "
		 "KUBECTL replace -f %s/new.yaml",
		e->tmp, e->tmp, e->tmp, e->tmp),
	    "=configmap/cm1 replaced", NULL);
	e2e_kubectl(e, "replace took", 0,
	    "get cm cm1 -n e2e -o jsonpath='{.data.a}'", "=replaced", NULL);
	e2e_kubectl(e, "patch --type=merge", 0,
	    "patch cm cm1 -n e2e --type=merge -p '{\"data\":{\"m\":\"1\"}}'",
	    "=configmap/cm1 patched", NULL);
	e2e_kubectl(e, "patch --type=json", 0,
	    "patch cm cm1 -n e2e --type=json -p '[{\"op\":\"add\",\"path\":\"/data/j\",\"value\":\"2\"}]'",
	    "=configmap/cm1 patched", NULL);
	e2e_kubectl(e, "patches took", 0,
	    "get cm cm1 -n e2e -o jsonpath='{.data.m}{.data.j}'", "=12", NULL);
	e2e_kubectl(e, "patch --type=strategic", 0,
	    "patch deploy web -n e2e -p "
	    "'{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"nginx\",\"image\":\"nginx:1.28\"}]}}}}'",
	    "=deployment.apps/web patched", NULL);
	e2e_kubectl(e, "strategic patch merged by name, generation bumped", 0,
	    "get deploy web -n e2e -o jsonpath='{.spec.template.spec.containers[*].image} {.metadata.generation}'",
	    "=nginx:1.28 2", NULL);
}

static void labels_and_scale(struct e2e *e)
{
	e2e_kubectl(e, "label", 0, "label cm cm1 -n e2e tier=front",
	    "=configmap/cm1 labeled", NULL);
	e2e_kubectl(e, "get -l key=value", 0,
	    "get cm -n e2e -l tier=front -o name", "=configmap/cm1", NULL);
	e2e_kubectl(e, "get -l 'key in (…)'", 0,
	    "get cm -n e2e -l 'tier in (front,back)' -o name", "=configmap/cm1",
	    NULL);
	e2e_kubectl(e, "get -l '!key'", 0, "get cm -n e2e -l '!tier' -o name",
	    "configmap/cmw", "!configmap/cm1", NULL);
	e2e_kubectl(e, "label without --overwrite", 1,
	    "label cm cm1 -n e2e tier=back",
	    "=error: 'tier' already has a value (front), and --overwrite is false",
	    NULL);
	e2e_kubectl(e, "unlabel", 0, "label cm cm1 -n e2e tier-",
	    "=configmap/cm1 unlabeled", NULL);
	e2e_kubectl(e, "annotate", 0, "annotate cm cm1 -n e2e note=hi",
	    "=configmap/cm1 annotated", NULL);
	e2e_kubectl(e, "annotation took", 0,
	    "get cm cm1 -n e2e -o jsonpath='{.metadata.annotations.note}'",
	    "=hi", NULL);
	e2e_kubectl(e, "scale", 0, "scale deploy web -n e2e --replicas=3",
	    "=deployment.apps/web scaled", NULL);
	e2e_kubectl(e, "scale took", 0,
	    "get deploy web -n e2e -o jsonpath='{.spec.replicas}'", "=3", NULL);
}

static void deletes(struct e2e *e)
{
	char a[4096];
	char *fd = e2e_file(e, "del.yaml", del_cm);
	e2e_kubectl(e, "create for delete", 0, "create configmap bg1 -n e2e",
	    "=configmap/bg1 created", NULL);
	e2e_kubectl(e, "delete --cascade=background", 0,
	    "delete cm bg1 -n e2e --cascade=background",
	    "=configmap \"bg1\" deleted", NULL);
	e2e_kubectl(e, "deleted is gone", 1, "get cm bg1 -n e2e",
	    "=Error from server (NotFound): configmaps \"bg1\" not found",
	    NULL);
	e2e_kubectl(e, "create for foreground", 0,
	    "create deployment fg -n e2e --image=nginx",
	    "=deployment.apps/fg created", NULL);
	e2e_kubectl(e, "delete --cascade=foreground", 0,
	    "delete deploy fg -n e2e --cascade=foreground --wait=false",
	    "=deployment.apps \"fg\" deleted", NULL);
	e2e_kubectl(e, "foreground leaves the object to the collector", 0,
	    "get deploy fg -n e2e -o jsonpath='{.metadata.finalizers[*]} {.metadata.deletionTimestamp}'",
	    "~^foregroundDeletion 20[0-9-]+T", NULL);
	e2e_kubectl(e, "create for orphan", 0,
	    "create deployment or1 -n e2e --image=nginx",
	    "=deployment.apps/or1 created", NULL);
	e2e_kubectl(e, "delete --cascade=orphan", 0,
	    "delete deploy or1 -n e2e --cascade=orphan --wait=false",
	    "=deployment.apps \"or1\" deleted", NULL);
	e2e_kubectl(e, "orphan leaves the object to the collector", 0,
	    "get deploy or1 -n e2e -o jsonpath='{.metadata.finalizers[*]} {.metadata.deletionTimestamp}'",
	    "~^orphan 20[0-9-]+T", NULL);
	e2e_kubectl(e, "create -f", 0, ARGS("create -f %s", fd),
	    "=configmap/del1 created", NULL);
	e2e_kubectl(e, "delete -f", 0, ARGS("delete -f %s", fd),
	    "=configmap \"del1\" deleted", NULL);
	e2e_sh(e, "delete -l", 0,
	    "KUBECTL create configmap b1 -n e2e >/dev/null && KUBECTL create configmap b2 -n e2e >/dev/null && "
	    "KUBECTL label cm b1 b2 -n e2e group=bulk >/dev/null && KUBECTL delete cm -n e2e -l group=bulk",
	    "configmap \"b1\" deleted", "configmap \"b2\" deleted", NULL);
	free(fd);
}

static void waits(struct e2e *e)
{
	char a[4096];
	e2e_kubectl(e, "run a pod", 0, "run waitpod -n e2e --image=nginx",
	    "=pod/waitpod created", NULL);
	e2e_kubectl(e, "get pods (no kubelet: Pending)", 0, "get pods -n e2e",
	    "~^NAME +READY +STATUS +RESTARTS +AGE$",
	    "~^waitpod +0/1 +Pending +0 +[0-9]+s$", NULL);
	/* No kubelet runs here: the test sets the condition itself, through
	 * the status subresource, while kubectl waits. */
	e2e_sh(e, "wait --for=condition=Ready", 0,
	    ARGS("KUBECTL wait --for=condition=Ready pod/waitpod -n e2e --timeout=30s > %s/w2.out 2>&1 & "
		 "p=$!; sleep 1; KUBECTL patch pod waitpod -n e2e --subresource=status --type=merge "
		 "-p '{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}' >/dev/null; "
		 "wait $p; r=$?; cat %s/w2.out; exit $r",
		e->tmp, e->tmp),
	    "=pod/waitpod condition met", NULL);
	e2e_sh(e, "wait --for=delete", 0,
	    ARGS("KUBECTL wait --for=delete configmap/cmw -n e2e --timeout=30s > %s/w3.out 2>&1 & "
		 "p=$!; sleep 1; KUBECTL delete configmap cmw -n e2e >/dev/null; "
		 "wait $p; r=$?; cat %s/w3.out; exit $r",
		e->tmp, e->tmp),
	    "=configmap/cmw condition met", NULL);
	e2e_kubectl(e, "exec says it is not served", 1,
	    "exec waitpod -n e2e -- ls",
	    "=Error from server (BadRequest): pods/exec is not supported by this server yet: "
	    "kubus serves no exec, attach, port-forward or proxy streams",
	    NULL);
	e2e_kubectl(e, "delete an unbound pod", 0, "delete pod waitpod -n e2e",
	    "=pod \"waitpod\" deleted", NULL);
}

static void auth_and_events(struct e2e *e)
{
	char a[4096];
	char *ev = e2e_file(e, "event.yaml", event_yaml);
	e2e_kubectl(e, "auth can-i (yes)", 0, "auth can-i create pods -n e2e",
	    "=yes", NULL);
	e2e_kubectl(e, "auth can-i as a viewer (no)", 1,
	    ARGS("--token=%s auth can-i create pods -n e2e", e->viewer_token),
	    "=no", NULL);
	e2e_kubectl(e, "auth can-i as a viewer (yes)", 0,
	    ARGS("--token=%s auth can-i list configmaps -n e2e",
		e->viewer_token),
	    "=yes", NULL);
	e2e_sh(e, "create an event", 0,
	    ARGS("U=$(KUBECTL get cm cm1 -n e2e -o jsonpath='{.metadata.uid}') && "
		 "sed \"s/UID/$U/\" %s | KUBECTL create -f -",
		ev),
	    "=event/ev1 created", NULL);
	e2e_kubectl(e, "get events", 0, "get events -n e2e",
	    "~^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE$",
	    "~ Normal +Tested +configmap/cm1 +hello from e2e$", NULL);
	e2e_kubectl(e, "describe shows the object's events", 0,
	    "describe configmap cm1 -n e2e",
	    "~Normal +Tested +.*hello from e2e$", NULL);
	free(ev);
}

void e2e_kubectl_steps(struct e2e *e)
{
	basics(e);
	creates(e);
	get_tables(e);
	get_formats(e);
	watch_and_describe(e);
	applies(e);
	replace_and_patch(e);
	labels_and_scale(e);
	deletes(e);
	waits(e);
	auth_and_events(e);
}

/* --- errors, as kubectl prints them against Kubernetes ---------------------- */

static void not_found_and_exists(struct e2e *e)
{
	char a[4096], x[4096];
	char *again = e2e_file(e, "cm1-again.yaml", cm1_again);
	e2e_kubectl(e, "NotFound", 1, "get pod nosuch -n e2e",
	    "=Error from server (NotFound): pods \"nosuch\" not found", NULL);
	e2e_kubectl(e, "NotFound (apps)", 1, "get deployment nosuch -n e2e",
	    "=Error from server (NotFound): deployments.apps \"nosuch\" not found",
	    NULL);
	/* kubectl asks for the namespace after a 404, and reports that. */
	e2e_kubectl(e, "NotFound namespace", 1, "get cm -n nosuchns cm1",
	    "=Error from server (NotFound): namespaces \"nosuchns\" not found",
	    NULL);
	snprintf(x, sizeof(x),
	    "=Error from server (AlreadyExists): error when creating \"%s\": "
	    "configmaps \"cm1\" already exists",
	    again);
	e2e_kubectl(e, "AlreadyExists (create -f)", 1,
	    ARGS("create -f %s", again), x, NULL);
	e2e_kubectl(e, "AlreadyExists (create namespace)", 1,
	    "create namespace e2e",
	    "=Error from server (AlreadyExists): namespaces \"e2e\" already exists",
	    NULL);
	e2e_kubectl(e, "create in a missing namespace", 1,
	    "create configmap x -n nosuchns",
	    "namespaces \"nosuchns\" not found", NULL);
	free(again);
}

static void conflict_and_invalid(struct e2e *e)
{
	char a[4096], x[4096];
	char *bad = e2e_file(e, "bad-deploy.yaml", bad_deploy);
	char *uf = e2e_file(e, "unknown-field.yaml", unknown_field);
	/* new.yaml carries the resourceVersion from before the replace. */
	snprintf(x, sizeof(x),
	    "=Error from server (Conflict): error when replacing \"%s/new.yaml\": Operation cannot "
	    "be fulfilled on configmaps \"cm1\": the object has been modified; please apply your "
	    "changes to the latest version and try again",
	    e->tmp);
	e2e_kubectl(e, "Conflict on a stale replace", 1,
	    ARGS("replace -f %s/new.yaml", e->tmp), x, NULL);
	e2e_kubectl(e, "Invalid with a field path", 1, ARGS("apply -f %s", bad),
	    "=The Deployment \"bad\" is invalid: spec.replicas: Invalid value: -1: must be "
	    "greater than or equal to 0",
	    NULL);
	e2e_kubectl(e, "Invalid name", 1, "create configmap Bad_Name -n e2e",
	    "is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain "
	    "must consist of lower case alphanumeric characters, '-' or '.', and must start and end "
	    "with an alphanumeric character",
	    NULL);
	e2e_kubectl(e, "strict field validation", 1, ARGS("apply -f %s", uf),
	    "unknown field \"dataa\"", NULL);
	e2e_kubectl(e, "bad JSON patch", 1,
	    "patch cm cm1 -n e2e --type=json -p '[{\"op\":\"remove\",\"path\":\"/data/nosuch\"}]'",
	    "=The request is invalid: the server rejected our request due to an error in our request",
	    NULL);
	free(bad);
	free(uf);
}

static void forbidden_and_unauthorized(struct e2e *e)
{
	char a[4096];
	const char *v = e->viewer_token;
	e2e_kubectl(e, "viewer may read", 0,
	    ARGS("--token=%s get cm cm1 -n e2e", v), "~^cm1 +[0-9]+ +[0-9]+s$",
	    NULL);
	/* A rule naming one object: the decision for one name is not taken
	 * for another, in either order. */
	e2e_kubectl(e, "create a ConfigMap the viewer's rule does not name", 0,
	    "create configmap cm-other -n e2e", "=configmap/cm-other created", NULL);
	e2e_kubectl(e, "Forbidden patch of an object the rule does not name", 1,
	    ARGS("--token=%s patch cm cm-other -n e2e -p '{\"data\":{\"x\":\"1\"}}'", v),
	    "configmaps \"cm-other\" is forbidden: User \"viewer\" cannot patch resource "
	    "\"configmaps\" in API group \"\" in the namespace \"e2e\"",
	    NULL);
	e2e_kubectl(e, "viewer may patch the object its rule names", 0,
	    ARGS("--token=%s patch cm cm1 -n e2e -p '{\"metadata\":{\"labels\":{\"picked\":\"yes\"}}}'",
	        v),
	    "=configmap/cm1 patched", NULL);
	e2e_kubectl(e, "Forbidden patch again, after an allowed one", 1,
	    ARGS("--token=%s patch cm cm-other -n e2e -p '{\"data\":{\"x\":\"1\"}}'", v),
	    "configmaps \"cm-other\" is forbidden", NULL);
	e2e_kubectl(e, "delete cm-other", 0, "delete configmap cm-other -n e2e",
	    "=configmap \"cm-other\" deleted", NULL);
	e2e_kubectl(e, "Forbidden create", 1,
	    ARGS("--token=%s create configmap nope -n e2e", v),
	    "configmaps is forbidden: User \"viewer\" cannot create resource \"configmaps\" in API "
	    "group \"\" in the namespace \"e2e\"",
	    NULL);
	e2e_kubectl(e, "Forbidden delete", 1,
	    ARGS("--token=%s delete configmap cm1 -n e2e", v),
	    "=Error from server (Forbidden): configmaps \"cm1\" is forbidden: User \"viewer\" cannot "
	    "delete resource \"configmaps\" in API group \"\" in the namespace \"e2e\"",
	    NULL);
	e2e_kubectl(e, "Forbidden scale", 1,
	    ARGS("--token=%s scale deploy web -n e2e --replicas=1", v),
	    "deployments.apps \"web\" is forbidden: User \"viewer\" cannot patch resource "
	    "\"deployments/scale\" in API group \"apps\" in the namespace \"e2e\"",
	    NULL);
	e2e_kubectl(e, "Forbidden cluster scope", 1,
	    ARGS("--token=%s create namespace nope", v),
	    "namespaces is forbidden: User \"viewer\" cannot create resource \"namespaces\" in API "
	    "group \"\" at the cluster scope",
	    NULL);
	e2e_kubectl(e, "Unauthorized", 1, "--token=not-a-token get pods -n e2e",
	    "error: You must be logged in to the server (Unauthorized)", NULL);
}

/* No namespace controller runs here: the namespace stays Terminating,
 * and NamespaceLifecycle refuses new content in it. */
static void terminating_namespace(struct e2e *e)
{
	e2e_kubectl(e, "create a namespace to delete", 0,
	    "create namespace doomed", "=namespace/doomed created", NULL);
	e2e_kubectl(e, "delete namespace", 0,
	    "delete namespace doomed --wait=false",
	    "=namespace \"doomed\" deleted", NULL);
	e2e_kubectl(e, "namespace is Terminating", 0, "get ns doomed",
	    "~^doomed +Terminating +[0-9]+s$", NULL);
	e2e_kubectl(e, "no creates in a terminating namespace", 1,
	    "create configmap late -n doomed",
	    "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because "
	    "it is being terminated",
	    NULL);
}

void e2e_kubectl_errors(struct e2e *e)
{
	not_found_and_exists(e);
	conflict_and_invalid(e);
	forbidden_and_unauthorized(e);
	terminating_namespace(e);
}

/* --- Debian's kubectl 1.20 ---------------------------------------------------- */

static bool old(struct e2e *e, const char *k, const char *name, int want,
    const char *args, const char *x1, const char *x2)
{
	char full[4096], label[256];
	const char *expect[] = { x1, x2, NULL };
	snprintf(full, sizeof(full), "--cache-dir=%s/.kube/cache-old %s",
	    e->home, args);
	snprintf(label, sizeof(label), "kubectl 1.20: %s", name);
	return e2e_kubectl_with(e, k, label, want, full, expect);
}

void e2e_old_kubectl(struct e2e *e)
{
	const char *k = getenv("KUBUS_KUBECTL_OLD");
	char a[4096], found[4096];
	if (k == NULL || !*k) {
		/* Where `apt-get download kubernetes-client` and `dpkg -x … BUILD/kubectl-old`
		 * put it (Debian's package conflicts with the installed kubectl). */
		snprintf(found, sizeof(found), "%s/kubectl-old/usr/bin/kubectl", kbt_build_dir());
		k = access(found, X_OK) == 0 ? found : NULL;
	}
	if (k == NULL) {
		e2e_skip(e, "kubectl 1.20",
		    "set KUBUS_KUBECTL_OLD to Debian's kubectl 1.20 (kubernetes-client), or "
		    "dpkg -x its .deb into BUILD/kubectl-old, to run it too");
		return;
	}
	char *fa = e2e_file(e, "deploy-old.yaml", deploy_a);
	old(e, k, "version", 0, "version",
	    "Server Version: version.Info{Major:\"1\"", NULL);
	old(e, k, "get namespaces", 0, "get ns", "~^e2e +Active +[0-9]+", NULL);
	old(e, k, "create configmap (JSON)", 0,
	    "create configmap old1 -n e2e --from-literal=o=1",
	    "=configmap/old1 created", NULL);
	old(e, k, "get -o yaml", 0, "get cm old1 -n e2e -o yaml",
	    "~^  o: \"1\"$", NULL);
	old(e, k, "get table", 0, "get cm -n e2e", "~^old1 +1 +[0-9]+s$", NULL);
	old(e, k, "apply (no OpenAPI v2 here)", 0,
	    ARGS("apply --validate=false -f %s", fa), "deployment.apps/app1",
	    NULL);
	old(e, k, "get -o wide", 0, "get cm old1 -n e2e -o wide", "~^old1 +1 +[0-9]+s$", NULL);
	old(e, k, "label", 0, "label cm old1 -n e2e tier=old", "=configmap/old1 labeled", NULL);
	old(e, k, "annotate", 0, "annotate cm old1 -n e2e note=x", "=configmap/old1 annotated",
	    NULL);
	old(e, k, "patch (strategic)", 0, "patch cm old1 -n e2e -p '{\"data\":{\"p\":\"2\"}}'",
	    "=configmap/old1 patched", NULL);
	old(e, k, "patch (merge)", 0,
	    "patch cm old1 -n e2e --type=merge -p '{\"data\":{\"q\":\"3\"}}'",
	    "=configmap/old1 patched", NULL);
	old(e, k, "get -l, jsonpath", 0,
	    "get cm -n e2e -l tier=old -o jsonpath='{.items[*].data.q}'", "=3", NULL);
	old(e, k, "describe", 0, "describe cm old1 -n e2e", "~^Name: +old1$",
	    "~^Labels: +tier=old$");
	old(e, k, "AlreadyExists", 1, "create configmap old1 -n e2e",
	    "=Error from server (AlreadyExists): configmaps \"old1\" already exists", NULL);
	old(e, k, "NotFound", 1, "get pod nosuch -n e2e",
	    "=Error from server (NotFound): pods \"nosuch\" not found", NULL);
	old(e, k, "delete", 0, "delete cm old1 -n e2e",
	    "=configmap \"old1\" deleted", NULL);
	free(fa);
}
