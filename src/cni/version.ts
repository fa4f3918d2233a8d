// CNI spec versions podwire speaks (SPEC.md 1.1.0 and the results of earlier versions).
export const CNI_SPEC_VERSION = '1.1.0';
export const SUPPORTED_CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** The VERSION command's result (SPEC.md "VERSION"). */
export function versionResult(): { cniVersion: string; supportedVersions: string[] } {
  return { cniVersion: CNI_SPEC_VERSION, supportedVersions: SUPPORTED_CNI_VERSIONS };
}
