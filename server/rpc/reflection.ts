// gRPC server reflection, v1 and v1alpha (identical messages, two package
// names), so grpcurl and buf curl can list and describe services without
// .proto files. Descriptors come from the generated code's embedded
// FileDescriptorProtos.
import { create, createRegistry, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/ts/grpc/reflection/v1alpha/reflection_pb.js";

type Req = v1.ServerReflectionRequest;
type Res = v1.ServerReflectionResponse;

const NOT_FOUND = 5; // grpc.Code NOT_FOUND
const UNIMPLEMENTED = 12;

/** Transitive dependencies of `file`, the file itself first. */
function withDeps(file: DescFile): DescFile[] {
  const out: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    out.push(f);
    f.dependencies.forEach(visit);
  };
  visit(file);
  return out;
}

function answer(reg: Registry, files: DescFile[], services: string[], req: Req): Res["messageResponse"] {
  const fileResponse = (f: DescFile | undefined, what: string): Res["messageResponse"] =>
    f
      ? {
          case: "fileDescriptorResponse",
          value: create(v1.FileDescriptorResponseSchema, {
            fileDescriptorProto: withDeps(f).map((d) => toBinary(FileDescriptorProtoSchema, d.proto)),
          }),
        }
      : { case: "errorResponse", value: create(v1.ErrorResponseSchema, { errorCode: NOT_FOUND, errorMessage: `${what} not found` }) };
  const m = req.messageRequest;
  switch (m.case) {
    case "listServices":
      return { case: "listServicesResponse", value: create(v1.ListServiceResponseSchema, { service: services.map((name) => ({ name })) }) };
    case "fileByFilename":
      return fileResponse(files.find((f) => f.proto.name === m.value), `file ${m.value}`);
    case "fileContainingSymbol": {
      const sym = m.value.replace(/^\./, "");
      let d = reg.get(sym);
      if (!d) {
        // A method name: "pkg.Service.Method".
        const i = sym.lastIndexOf(".");
        const svc = reg.getService(sym.slice(0, i));
        if (svc?.methods.some((mm) => mm.name === sym.slice(i + 1))) d = svc;
      }
      return fileResponse(d?.file, `symbol ${sym}`);
    }
    case "fileContainingExtension":
      return fileResponse(undefined, `extension ${m.value.containingType}/${m.value.extensionNumber}`);
    case "allExtensionNumbersOfType": {
      const msg = reg.getMessage(m.value);
      if (!msg) return fileResponse(undefined, `type ${m.value}`);
      return { case: "allExtensionNumbersResponse", value: create(v1.ExtensionNumberResponseSchema, { baseTypeName: m.value, extensionNumber: [] }) };
    }
    default:
      return { case: "errorResponse", value: create(v1.ErrorResponseSchema, { errorCode: UNIMPLEMENTED, errorMessage: "unsupported reflection request" }) };
  }
}

/** Registers reflection v1 and v1alpha describing `files` and listing `services`. */
export function registerReflection(router: ConnectRouter, files: DescFile[], services: string[]): void {
  // Describe what we list: the reflection services' own files too.
  const all = [...new Map([...files, v1.file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection].flatMap(withDeps).map((f) => [f.name, f])).values()];
  const reg = createRegistry(...all);
  const listed = [...services, "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(reqs) {
      for await (const req of reqs) {
        yield create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(reg, all, listed, req) });
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(reqs) {
      for await (const req of reqs) {
        // v1alpha messages have the same fields and numbers as v1.
        const r = answer(reg, all, listed, req as unknown as Req);
        yield create(v1alpha.ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: r as unknown as v1alpha.ServerReflectionResponse["messageResponse"],
        });
      }
    },
  });
}
