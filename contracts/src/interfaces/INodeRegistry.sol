// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Node membership, after xmtpd's settlement-chain NodeRegistry.
/// Node ids are assigned 100, 200, 300, ... in order of addNode.
interface INodeRegistry {
    struct Node {
        uint32 nodeId;
        address owner;       // may claim and withdraw the node's fees
        address signer;      // signs originator envelopes and report attestations
        bool isCanonical;    // member of the canonical network
        string httpAddress;  // "host:port" peers dial for replication
    }

    event NodeAdded(uint32 indexed nodeId, address indexed owner, address signer, string httpAddress);
    event NodeAddedToCanonicalNetwork(uint32 indexed nodeId);
    event NodeRemovedFromCanonicalNetwork(uint32 indexed nodeId);
    event HttpAddressUpdated(uint32 indexed nodeId, string httpAddress);

    function admin() external view returns (address);
    function addNode(address owner, address signer, string calldata httpAddress) external returns (uint32 nodeId);
    function addToNetwork(uint32 nodeId) external;
    function removeFromNetwork(uint32 nodeId) external;
    function setHttpAddress(uint32 nodeId, string calldata httpAddress) external; // admin or owner
    function getNode(uint32 nodeId) external view returns (Node memory);
    function getAllNodes() external view returns (Node[] memory);
    function getCanonicalNodes() external view returns (Node[] memory);
    function canonicalNodesCount() external view returns (uint32);
    function isCanonicalNode(uint32 nodeId) external view returns (bool);
}
