"""Checks that every example in an OpenAPI 3.1 document (component schemas,
response bodies, parameters) matches its own schema. Usage:
openapi_examples.py openapi.json (run with the venv of .ci/schemathesis.sh,
which has openapi-schema-validator)."""
import json, sys
from openapi_schema_validator import OAS31Validator
doc = json.load(open(sys.argv[1]))
checked = 0
def check(schema, example, where):
    global checked
    # The document's components travel along, so `#/components/...` resolves.
    errors = list(OAS31Validator({**schema, "components": doc["components"]}).iter_errors(example))
    if errors:
        sys.exit(f"example of {where} does not match its schema: {errors[0].message}")
    checked += 1
for name, schema in doc["components"]["schemas"].items():
    if "example" in schema:
        check({"$ref": f"#/components/schemas/{name}"}, schema["example"], name)
for path, item in doc["paths"].items():
    for method, op in item.items():
        for status, resp in op.get("responses", {}).items():
            for media in resp.get("content", {}).values():
                if "example" in media and "schema" in media:
                    check(media["schema"], media["example"], f"{method.upper()} {path} {status}")
        for param in op.get("parameters", []):
            if "example" in param:
                check(param["schema"], param["example"], f"{method.upper()} {path} {param['name']}")
print(f"{checked} examples match their schemas")
