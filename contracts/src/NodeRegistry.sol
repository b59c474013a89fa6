// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// Node membership. The admin adds nodes (ids 100, 200, ...) and moves them in and out of the
/// canonical network; adding or removing twice changes nothing, so a deploy can be re-run.
contract NodeRegistry is INodeRegistry {
    uint32 public constant NODE_ID_INCREMENT = 100;

    address public immutable admin;

    Node[] private _nodes; // _nodes[i].nodeId == (i + 1) * NODE_ID_INCREMENT
    uint32 public canonicalNodesCount;

    error NotAdmin(address caller);
    error NotAdminOrOwner(address caller, uint32 nodeId);
    error ZeroAddress();
    error NodeNotFound(uint32 nodeId);

    constructor(address admin_) {
        if (admin_ == address(0)) revert ZeroAddress();
        admin = admin_;
    }

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    function addNode(address owner, address signer, string calldata httpAddress)
        external
        onlyAdmin
        returns (uint32 nodeId)
    {
        if (owner == address(0) || signer == address(0)) revert ZeroAddress();
        nodeId = uint32(_nodes.length + 1) * NODE_ID_INCREMENT;
        _nodes.push(Node(nodeId, owner, signer, false, httpAddress));
        emit NodeAdded(nodeId, owner, signer, httpAddress);
    }

    function addToNetwork(uint32 nodeId) external onlyAdmin {
        Node storage node = _node(nodeId);
        if (node.isCanonical) return;
        node.isCanonical = true;
        canonicalNodesCount += 1;
        emit NodeAddedToCanonicalNetwork(nodeId);
    }

    function removeFromNetwork(uint32 nodeId) external onlyAdmin {
        Node storage node = _node(nodeId);
        if (!node.isCanonical) return;
        node.isCanonical = false;
        canonicalNodesCount -= 1;
        emit NodeRemovedFromCanonicalNetwork(nodeId);
    }

    function setHttpAddress(uint32 nodeId, string calldata httpAddress) external {
        Node storage node = _node(nodeId);
        if (msg.sender != admin && msg.sender != node.owner) {
            revert NotAdminOrOwner(msg.sender, nodeId);
        }
        node.httpAddress = httpAddress;
        emit HttpAddressUpdated(nodeId, httpAddress);
    }

    function getNode(uint32 nodeId) external view returns (Node memory) {
        return _node(nodeId);
    }

    function getAllNodes() external view returns (Node[] memory) {
        return _nodes;
    }

    function getCanonicalNodes() external view returns (Node[] memory canonical) {
        canonical = new Node[](canonicalNodesCount);
        uint256 j;
        for (uint256 i; i < _nodes.length; ++i) {
            if (_nodes[i].isCanonical) canonical[j++] = _nodes[i];
        }
    }

    function isCanonicalNode(uint32 nodeId) external view returns (bool) {
        return _exists(nodeId) && _nodes[nodeId / NODE_ID_INCREMENT - 1].isCanonical;
    }

    function _exists(uint32 nodeId) private view returns (bool) {
        return nodeId != 0 && nodeId % NODE_ID_INCREMENT == 0
            && nodeId / NODE_ID_INCREMENT <= _nodes.length;
    }

    function _node(uint32 nodeId) private view returns (Node storage) {
        if (!_exists(nodeId)) revert NodeNotFound(nodeId);
        return _nodes[nodeId / NODE_ID_INCREMENT - 1];
    }
}
