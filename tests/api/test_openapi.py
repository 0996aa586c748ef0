"""The served OpenAPI document and the router agree: every documented
operation is routed (never the router's 404 or a 405), every documented path
answers an undocumented method with 405 and an Allow header listing exactly the
documented methods, and placeholders follow the route table's :params."""
import json

PLACEHOLDER = {"id": "zzabsent", "name": "zzabsent", "username": "nosuchuser"}
METHODS = {"get", "put", "post", "delete", "patch"}


def test_every_documented_operation_is_routed(shared_stack):
    s = shared_stack
    r = s.get("/api/v1/openapi.json")
    assert r.status == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "Valdock API"
    paths = doc["paths"]
    assert "/api/v1/system/health" in paths and "/api/v1/instances/{id}/acls/{username}" in paths
    count = 0
    for path, item in paths.items():
        url = path
        for name, value in PLACEHOLDER.items():
            url = url.replace("{%s}" % name, value)
        assert "{" not in url, f"unknown placeholder in {path}"
        documented = {m for m in item if m in METHODS}
        for method, op in item.items():
            assert op["summary"] and op["x-valdock-role"] in ("public", "viewer", "operator", "admin")
            params = [p["name"] for p in op.get("parameters", [])]
            assert params == [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
            body = {} if "requestBody" in op else None
            r = s.request(method.upper(), url, body=body)
            count += 1
            assert r.status != 405, (method, url, r)
            if r.status == 404:
                # a resource that does not exist, never a route that does not
                assert r.json()["code"] != "not_found", (method, url, r.body)
        # what is not documented is not served
        for other in sorted(METHODS - documented):
            r = s.request(other.upper(), url, body={} if other in ("put", "post", "patch") else None)
            assert r.status == 405, (other, url, r)
            allow = {m.strip().lower() for m in r.header("Allow").split(",")}
            expect = set(documented) | ({"head"} if "get" in documented else set())
            assert allow == expect, (url, allow, expect)
    assert count == sum(len([m for m in item if m in METHODS]) for item in paths.values()) >= 25
    # the document lists itself
    assert paths["/api/v1/openapi.json"]["get"]["x-valdock-role"] == "public"
    json.dumps(doc)   # plain JSON all the way down
