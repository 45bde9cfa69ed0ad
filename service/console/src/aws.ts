// The console's only way to the server: ordinary AWS requests (KMS and the policy simulator in
// AWS JSON 1.1, CloudTrail's LookupEvents, STS in the query protocol), each signed in the browser
// with SigV4 by the AWS SDK for JavaScript's signer. The credentials live in this module's memory
// only: never in storage, a cookie or the URL; signing out drops them and reloads the page.

import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

/** Credentials of the signed-in user, held only in this tab's memory. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Who is signed in, and where. */
interface Session {
  credentials: Credentials;
  region: string;
  arn: string;
}

let session: Session | null = null;

/** The console's name in every request (CloudTrail's `userAgent`). */
export const USER_AGENT = "trent-console/0.1.0";

/** An error answer, as AWS wrote it. */
export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly requestId: string,
  ) {
    super(message);
  }
  /** `Code: message`, or the code alone when AWS sent no message. */
  describe(): string {
    return this.message ? `${this.code}: ${this.message}` : this.code;
  }
}

/** Whether someone is signed in. */
export function signedIn(): boolean {
  return session !== null;
}

/** The signed-in principal's ARN. */
export function callerArn(): string {
  return session?.arn ?? "";
}

/** The Region calls go to. */
export function region(): string {
  return session?.region ?? "us-east-1";
}

/** Send later calls to another Region. */
export function setRegion(r: string): void {
  if (session) session.region = r;
}

/** Check the credentials with STS GetCallerIdentity and keep them for this tab. */
export async function signIn(credentials: Credentials, inRegion: string): Promise<string> {
  const xml = await send("sts", inRegion, credentials, {
    "content-type": "application/x-www-form-urlencoded; charset=utf-8",
  }, "Action=GetCallerIdentity&Version=2011-06-15");
  const doc = new DOMParser().parseFromString(xml.text, "application/xml");
  const arn = doc.getElementsByTagName("Arn")[0]?.textContent ?? "";
  session = { credentials, region: inRegion, arn };
  return arn;
}

/** Forget the credentials: the page reloads, so nothing of the session stays in memory. */
export function signOut(): void {
  session = null;
  location.hash = "";
  location.reload();
}

/** Call a KMS operation. */
export function kms<T = any>(operation: string, body: object = {}): Promise<T> {
  return json("kms", `TrentService.${operation}`, body);
}

/** Call CloudTrail's LookupEvents. */
export function lookupEvents<T = any>(body: object): Promise<T> {
  return json(
    "cloudtrail",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
    body,
  );
}

/** Ask the policy simulator what a candidate key policy changes. */
export function simulateKeyPolicyChange<T = any>(keyId: string, policy: string): Promise<T> {
  return json("kms", "TrentPolicySimulator_20261201.SimulateKeyPolicyChange", {
    KeyId: keyId,
    Policy: policy,
  });
}

async function json<T>(service: string, target: string, body: object): Promise<T> {
  if (!session) throw new AwsError("NotSignedIn", "Sign in first.", 0, "");
  const answer = await send(service, session.region, session.credentials, {
    "content-type": "application/x-amz-json-1.1",
    "x-amz-target": target,
  }, JSON.stringify(body));
  return (answer.text ? JSON.parse(answer.text) : {}) as T;
}

/** Sign and send one request; an error answer becomes an `AwsError`. */
async function send(
  service: string,
  inRegion: string,
  credentials: Credentials,
  headers: Record<string, string>,
  body: string,
): Promise<{ text: string }> {
  const signer = new SignatureV4({
    service,
    region: inRegion,
    credentials,
    sha256: Sha256,
    uriEscapePath: true,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: location.protocol,
    hostname: location.hostname,
    port: location.port ? Number(location.port) : undefined,
    path: "/",
    query: {},
    headers: { ...headers, host: location.host, "x-amz-user-agent": USER_AGENT },
    body,
  });
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    if (name.toLowerCase() !== "host") sent[name] = String(value);
  }
  let response: Response;
  try {
    response = await fetch("/", {
      method: "POST",
      headers: sent,
      body,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new AwsError("NetworkError", `The server did not answer: ${e}`, 0, "");
  }
  const text = await response.text();
  const requestId = response.headers.get("x-amzn-requestid") ?? "";
  if (!response.ok) throw errorOf(text, response.status, requestId);
  return { text };
}

/** The `AwsError` of an error body: JSON (`__type`, `message`) or STS's XML. */
function errorOf(text: string, status: number, requestId: string): AwsError {
  try {
    const body = JSON.parse(text);
    const type = String(body.__type ?? "UnknownError");
    const code = type.includes("#") ? type.slice(type.indexOf("#") + 1) : type;
    return new AwsError(code, body.message ?? body.Message ?? "", status, requestId);
  } catch {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    const code = doc.getElementsByTagName("Code")[0]?.textContent ?? `HTTP ${status}`;
    const message = doc.getElementsByTagName("Message")[0]?.textContent ?? "";
    return new AwsError(code, message, status, requestId);
  }
}
