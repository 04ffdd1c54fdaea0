/**
 * Regions that offer zone-redundant storage, from "Azure regions that support zone-redundant storage
 * (ZRS)" (learn.microsoft.com, Azure Storage, standard accounts; read 2026-11). A gallery replica
 * set to Standard_ZRS elsewhere is refused by Azure only when the version is created, after the
 * whole transfer: refusing it at start saves that.
 */
export const ZRS_REGIONS: ReadonlySet<string> = new Set([
  'southafricanorth',
  'australiaeast',
  'centralindia',
  'chinanorth3',
  'eastasia',
  'japaneast',
  'koreacentral',
  'southeastasia',
  'francecentral',
  'germanywestcentral',
  'italynorth',
  'northeurope',
  'norwayeast',
  'polandcentral',
  'spaincentral',
  'swedencentral',
  'switzerlandnorth',
  'uksouth',
  'westeurope',
  'israelcentral',
  'qatarcentral',
  'uaenorth',
  'canadacentral',
  'centralus',
  'eastus',
  'eastus2',
  'mexicocentral',
  'southcentralus',
  'usgovvirginia',
  'westus2',
  'westus3',
  'brazilsouth',
]);
